"""The agent layer's SDK session events as appliance events: tools, handoffs, guardrails, transcripts."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ..events import ApplianceEvent, GuardrailTripped, HandedOff, ToolCalled, TranscriptLine
from .guardrails import GUARDRAIL_NAME
from .tools.errors import TOOL_ERROR, is_error_result

if TYPE_CHECKING:
    from agents.realtime import RealtimeSessionEvent

RESULT_CHARS = 300  # a tool's result in the log and transcript is cut here
_UNKNOWN_TOOL = re.compile(r"^Tool (?P<name>\S+) not found$")


def unknown_tool(event: RealtimeSessionEvent) -> str | None:
    """The name of a tool the model called that does not exist (the SDK reports it as an error event)."""
    if event.type != "error":
        return None
    error = event.error
    message = error.get("message") if isinstance(error, dict) else getattr(error, "message", None)
    match = _UNKNOWN_TOOL.match(str(message or ""))
    return match.group("name") if match else None


def _arguments(text: str | None) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return text


def _raw_server_event(event: RealtimeSessionEvent) -> dict[str, Any] | None:
    if event.type != "raw_model_event":
        return None
    data = getattr(event.data, "data", None)
    return data if getattr(event.data, "type", None) == "raw_server_event" and isinstance(data, dict) else None


def appliance_event(event: RealtimeSessionEvent, agent: str) -> ApplianceEvent | None:
    """The appliance event for an SDK session event, or None when it is not the agent layer's."""
    if event.type == "tool_end":
        output = str(event.output)
        failed = is_error_result(output)
        error = output.removeprefix(f"{TOOL_ERROR}: ").split(". ", 1)[0] if failed else None
        return ToolCalled(
            tool=event.tool.name,
            result=None if failed else output[:RESULT_CHARS],
            error=error,
            extra={"arguments": _arguments(event.arguments), "agent": event.agent.name},
        )
    if event.type == "handoff":
        return HandedOff(from_agent=event.from_agent.name, to_agent=event.to_agent.name)
    if event.type == "guardrail_tripped":
        names = [r.guardrail.get_name() for r in event.guardrail_results]
        phrases = [r.output.output_info.get("phrase") for r in event.guardrail_results
                   if isinstance(r.output.output_info, dict)]
        phrase = ", ".join(p for p in phrases if p) or None
        return GuardrailTripped(guardrail=", ".join(names) or GUARDRAIL_NAME, agent=agent, phrase=phrase)
    if (missing := unknown_tool(event)) is not None:
        return ToolCalled(tool=missing, error="unknown tool", extra={"agent": agent})
    raw = _raw_server_event(event)
    if raw is not None:
        kind = raw.get("type")
        if kind == "conversation.item.input_audio_transcription.completed" and raw.get("transcript"):
            return TranscriptLine(role="user", text=str(raw["transcript"]).strip())
        if kind in ("response.output_audio_transcript.done", "response.output_text.done"):
            text = str(raw.get("transcript") or raw.get("text") or "").strip()
            if text:
                return TranscriptLine(role="assistant", text=text, agent=agent)
    return None
