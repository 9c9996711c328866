"""The realtime agent and its tools."""

from __future__ import annotations

import asyncio
import datetime as dt

from agents import function_tool
from agents.realtime import RealtimeAgent

from ..events import EventBus, ToolCalled


class ConversationControl:
    """What tools may ask of the running conversation (so far: to end it), and where they report."""

    def __init__(self, events: EventBus) -> None:
        self.goodbye = asyncio.Event()
        self.events = events


def current_time_text(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now().astimezone()
    return now.strftime("%A %d %B %Y, %H:%M (%Z, UTC%z)")


def build_agent(name: str, instructions: str, control: ConversationControl) -> RealtimeAgent:
    @function_tool
    def get_current_time() -> str:
        """The current local date and time of this device."""
        text = current_time_text()
        control.events.publish(ToolCalled(tool="get_current_time", result=text))
        return text

    @function_tool
    def end_conversation() -> str:
        """End the conversation when the person says goodbye or is clearly done."""
        control.events.publish(ToolCalled(tool="end_conversation"))
        control.goodbye.set()
        return "The conversation will end after your reply. Say a short goodbye."

    return RealtimeAgent(name=name, instructions=instructions, tools=[get_current_time, end_conversation])
