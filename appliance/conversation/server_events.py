"""Reading the Realtime server's own events out of the SDK's `raw_model_event` wrapper: the few the
SDK does not turn into events of its own (speech started/stopped, a failed response)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK itself is imported when a conversation starts (see sdk.py)
    from agents.realtime import RealtimeSessionEvent


def server_event_type(event: RealtimeSessionEvent) -> str | None:
    """The server event's `type` (e.g. `input_audio_buffer.speech_started`), None for SDK events."""
    if event.type != "raw_model_event":
        return None
    data = event.data
    if getattr(data, "type", None) == "raw_server_event" and isinstance(data.data, dict):  # type: ignore[union-attr]
        return data.data.get("type")  # type: ignore[union-attr]
    return None


def response_failure(event: RealtimeSessionEvent) -> str | None:
    """`code: message` of a `response.done` whose response failed, else None."""
    response = event.data.data.get("response") if event.type == "raw_model_event" else None  # type: ignore[union-attr]
    if not isinstance(response, dict) or response.get("status") != "failed":
        return None
    details = response.get("status_details")
    error = details.get("error") if isinstance(details, dict) else None
    if not isinstance(error, dict):
        return "unknown"
    code = error.get("code") or error.get("type") or "unknown"
    message = error.get("message")
    return f"{code}: {message}" if message else str(code)
