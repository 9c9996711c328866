"""How a conversation ends: a typed reason, or a `ConversationError` that says what broke."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EndReason = Literal[
    "idle_timeout",  # nobody spoke for `session.idle_timeout_s`
    "max_duration",  # the hard cap of one conversation
    "goodbye",  # the agent's end_conversation tool, after its goodbye played
    "button",  # a button press ended it
    "stopped",  # the appliance is shutting down
    "server_closed",  # the server closed the session
    "api",  # a device API client ended it
    "answered_elsewhere",  # another device of the home answered the same wake, and heard it better
]

ErrorKind = Literal[
    "connect_timeout",  # no session within `realtime.connect_timeout_s`
    "connect_failed",  # the handshake or session start failed
    "send_failed",  # sending audio or a command to the server failed
    "connection",  # the session's event stream broke (dropped socket, garbage frame)
    "audio_device",  # a microphone or speaker fault ended it
]


class ConversationError(RuntimeError):
    """The conversation could not start or broke; `kind` names the failure for logs and metrics."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


@dataclass(frozen=True)
class ConversationResult:
    reason: EndReason
    connect_ms: float
    duration_s: float
    sent_audio_ms: float
    dropped_blocks: int
