"""The appliance's one state machine. Everything else reacts to its transitions, which it publishes
on the event stream as `StateChanged` events."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from .events import EventBus, StateChanged


class State(enum.StrEnum):
    IDLE = "idle"
    WAKING = "waking"
    CONNECTING = "connecting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ERROR = "error"
    MUTED = "muted"
    RINGING = "ringing"  # a timer is due: its sound repeats until dismissed
    ANNOUNCING = "announcing"  # speaking an announcement (appliance/announcements/) until done or dismissed
    ENROLLING = "enrolling"  # learning a voice (enrolment_flow.py): the wake word is paused


CONVERSATION_STATES = frozenset({State.CONNECTING, State.LISTENING, State.THINKING, State.SPEAKING})

_ALLOWED: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.WAKING, State.MUTED, State.ERROR, State.RINGING, State.ANNOUNCING,
                           State.ENROLLING}),
    State.WAKING: frozenset({State.CONNECTING, State.IDLE, State.ERROR}),
    # A conversation ends in idle, or in muted when mute was switched on during it.
    State.CONNECTING: frozenset({State.LISTENING, State.IDLE, State.MUTED, State.ERROR}),
    State.LISTENING: frozenset({State.THINKING, State.SPEAKING, State.IDLE, State.MUTED, State.ERROR}),
    State.THINKING: frozenset({State.LISTENING, State.SPEAKING, State.IDLE, State.MUTED, State.ERROR}),
    State.SPEAKING: frozenset({State.LISTENING, State.THINKING, State.IDLE, State.MUTED, State.ERROR}),
    State.ERROR: frozenset({State.IDLE, State.MUTED}),
    State.MUTED: frozenset({State.IDLE, State.ERROR, State.RINGING, State.ANNOUNCING}),
    # A ring ends where the appliance rests (idle or muted); a timer rings even when muted.
    State.RINGING: frozenset({State.IDLE, State.MUTED, State.ERROR}),
    # Likewise an announcement (mute is about the microphone, which an announcement does not use).
    State.ANNOUNCING: frozenset({State.IDLE, State.MUTED, State.ERROR}),
    # Enrolment ends where the appliance rests (mute cancels it), or in error when the audio fails.
    State.ENROLLING: frozenset({State.IDLE, State.MUTED, State.ERROR}),
}
TRANSITIONS: Mapping[State, frozenset[State]] = MappingProxyType(_ALLOWED)
"""The allowed transitions, read-only (scripts/state_diagram.py draws docs/states.md from them)."""


class InvalidTransition(RuntimeError):
    pass


class StateMachine:
    """Holds the current state, validates transitions and publishes each one on the event bus.

    Only the event-loop thread changes the state."""

    def __init__(self, events: EventBus | None = None) -> None:
        self._state = State.IDLE
        self.events = events or EventBus()

    @property
    def state(self) -> State:
        return self._state

    def can(self, new: State) -> bool:
        return new in _ALLOWED[self._state]

    def to(self, new: State, *, reason: str | None = None, source: str | None = None, kind: str | None = None) -> None:
        old = self._state
        if new == old:
            return
        if not self.can(new):
            raise InvalidTransition(f"{old} -> {new}")
        self._state = new
        self.events.publish(StateChanged(state=str(new), previous=str(old), reason=reason, source=source, kind=kind))
