"""The built-in function tools. Their docstrings are what the model reads.

`builtin_tools` returns them by name, so `config/agents.toml` can give each agent the ones it needs.
Every tool shares one failure policy (`errors.py`) and one timeout (`APPLIANCE_AGENT__TOOL_TIMEOUT_S`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...events import EventBus
from ...settings import Settings
from .clock import current_time_text, local_zone
from .enrolment import EnrolmentControl, profile_name
from .errors import ToolFailed, tool_failure, tool_timeout
from .memory import MemoryBook
from .timers import TimerBook, parse_duration, spoken_duration
from .volume import VolumeControl, clamp_percent
from .weather import get_weather_text

if TYPE_CHECKING:  # the SDK is imported when the first conversation starts (see ..sdk)
    from agents import FunctionTool

ALWAYS = ("end_conversation",)  # every agent can end the conversation
BUILTIN_TOOL_NAMES = frozenset({
    "get_current_time", "end_conversation", "get_weather", "set_timer", "list_timers", "cancel_timer",
    "remember", "forget", "set_volume", "change_volume", "learn_my_voice",
})


@dataclass
class ConversationControl:
    """What tools may ask of the running conversation and of the appliance, and where they report."""

    events: EventBus
    goodbye: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ToolServices:
    """The appliance's parts the tools work on; any may be missing (then its tools are left out)."""

    settings: Settings
    timers: TimerBook | None = None
    memory: MemoryBook | None = None
    volume: VolumeControl | None = None
    enrolment: EnrolmentControl | None = None


def builtin_tools(services: ToolServices, control: ConversationControl) -> dict[str, FunctionTool]:
    from agents import function_tool

    settings = services.settings
    zone = local_zone(settings.agent.timezone)
    timeout = settings.agent.tool_timeout_s

    def tool(func: Callable[..., Any]) -> FunctionTool:
        if not inspect.iscoroutinefunction(func):  # quick local work; the SDK times out only async tools
            return function_tool(func, failure_error_function=tool_failure)
        return function_tool(func, failure_error_function=tool_failure, timeout=timeout,
                             timeout_error_function=tool_timeout)

    def get_current_time() -> str:
        """The current local date and time of this device (in its time zone)."""
        return current_time_text(zone=zone)

    def end_conversation() -> str:
        """End the conversation when the person says goodbye or is clearly done."""
        control.goodbye.set()
        return "The conversation will end after your reply. Say a short goodbye."

    async def get_weather(place: str) -> str:
        """Current weather and today's and tomorrow's forecast for a place (a city or town name)."""
        return await get_weather_text(settings.agent.weather_url, place, timeout)

    basics: list[Callable[..., Any]] = [get_current_time, end_conversation, get_weather]
    tools = {t.name: t for t in map(tool, basics)}
    if services.timers is not None:
        tools.update({t.name: t for t in map(tool, _timer_tools(services.timers))})
    if services.memory is not None:
        tools.update({t.name: t for t in map(tool, _memory_tools(services.memory))})
    if services.volume is not None:
        tools.update({t.name: t for t in map(tool, _volume_tools(services.volume))})
    if services.enrolment is not None:
        tools.update({t.name: t for t in map(tool, _enrolment_tools(services.enrolment, control))})
    return tools


def _timer_tools(book: TimerBook) -> list[Callable[..., Any]]:
    def set_timer(duration: str, label: str) -> str:
        """Start a kitchen timer. duration: e.g. "5 minutes", "1h 30m", "90 seconds". label: what it is for,
        e.g. "pasta". When it is due the device rings until someone says the wake word or presses the button."""
        try:
            seconds = parse_duration(duration)
            timer = book.add(seconds, label)
        except ValueError as exc:
            raise ToolFailed(str(exc)) from None
        return f"Timer '{timer.label}' set for {spoken_duration(timer.seconds)}."

    def list_timers() -> str:
        """The running timers with the time each has left."""
        pending = book.pending()
        if not pending:
            return "No timers are running."
        return "; ".join(f"{t.label}: {spoken_duration(t.remaining())} left" for t in pending)

    def cancel_timer(label: str) -> str:
        """Cancel the running timer(s) whose label contains this text ("all" cancels every timer)."""
        gone = book.cancel(label)
        if not gone:
            return f"No running timer matches '{label}'."
        return "Cancelled: " + ", ".join(t.label for t in gone) + "."

    return [set_timer, list_timers, cancel_timer]


def _memory_tools(book: MemoryBook) -> list[Callable[..., Any]]:
    def remember(fact: str) -> str:
        """Remember a fact about this household for future conversations (e.g. "Anna is vegetarian").
        Only when the person asks you to remember something. The facts you know are in your instructions."""
        try:
            saved = book.remember(fact)
        except ValueError as exc:
            raise ToolFailed(str(exc)) from None
        return f"Remembered: {saved.text}"

    def forget(fact: str) -> str:
        """Forget the remembered facts that contain these words."""
        gone = book.forget_matching(fact)
        if not gone:
            return f"Nothing remembered matches '{fact}'."
        return "Forgotten: " + "; ".join(f.text for f in gone)

    return [remember, forget]


def _volume_tools(control: VolumeControl) -> list[Callable[..., Any]]:
    def set_volume(percent: int) -> str:
        """Set the speaker volume, 0 to 100 percent (it applies to answers and sounds, and is kept)."""
        control.set_volume(clamp_percent(percent))
        return f"Volume is now {control.volume} percent."

    def change_volume(delta: int) -> str:
        """Make the speaker louder (positive delta, in percent points, e.g. 10) or quieter (negative)."""
        control.set_volume(clamp_percent(control.volume + delta))
        return f"Volume is now {control.volume} percent."

    return [set_volume, change_volume]


def _enrolment_tools(enrolment: EnrolmentControl, control: ConversationControl) -> list[Callable[..., Any]]:
    def learn_my_voice(name: str) -> str:
        """Learn the person's voice, so the wake word hears them better ("learn my voice", "teach it my
        voice"). name: the person's first name if they said it, else "". The device guides them after this
        conversation ends: a chime, then they say the wake phrase; five times."""
        answer = enrolment.enroll_after_conversation(profile_name(name))
        if not answer.ok:
            raise ToolFailed(f"Cannot learn a voice now: {answer.error}")
        control.goodbye.set()  # it starts once this conversation is over: end it after the reply
        takes, phrase = answer.values.get("takes", 5), answer.values.get("phrase", "the wake phrase")
        return (f"When this conversation ends the device will chime {takes} times; after each chime the person "
                f"says \"{phrase}\" on its own. Tell them that in one short sentence; the conversation then ends.")

    return [learn_my_voice]
