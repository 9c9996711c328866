"""The appliance's one state machine. Everything else reacts to its transitions."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from .logs import log_event

log = logging.getLogger("appliance.state")


class State(enum.StrEnum):
    IDLE = "idle"
    WAKING = "waking"
    CONNECTING = "connecting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ERROR = "error"
    MUTED = "muted"


CONVERSATION_STATES = frozenset({State.CONNECTING, State.LISTENING, State.THINKING, State.SPEAKING})

_ALLOWED: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.WAKING, State.MUTED, State.ERROR}),
    State.WAKING: frozenset({State.CONNECTING, State.IDLE, State.ERROR}),
    State.CONNECTING: frozenset({State.LISTENING, State.IDLE, State.ERROR}),
    State.LISTENING: frozenset({State.THINKING, State.SPEAKING, State.IDLE, State.ERROR}),
    State.THINKING: frozenset({State.LISTENING, State.SPEAKING, State.IDLE, State.ERROR}),
    State.SPEAKING: frozenset({State.LISTENING, State.THINKING, State.IDLE, State.ERROR}),
    State.ERROR: frozenset({State.IDLE}),
    State.MUTED: frozenset({State.IDLE, State.ERROR}),
}

Listener = Callable[[State, State], None]


class InvalidTransition(RuntimeError):
    pass


class StateMachine:
    """Holds the current state; validates and logs transitions; notifies listeners (LEDs, metrics)."""

    def __init__(self) -> None:
        self._state = State.IDLE
        self._listeners: list[Listener] = []

    @property
    def state(self) -> State:
        return self._state

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def can(self, new: State) -> bool:
        return new in _ALLOWED[self._state]

    def to(self, new: State, **fields: Any) -> None:
        old = self._state
        if new == old:
            return
        if not self.can(new):
            raise InvalidTransition(f"{old} -> {new}")
        self._state = new
        log_event(log, "state", f"{old} -> {new}", state=str(new), previous=str(old), **fields)
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception:  # an indicator must never break the appliance
                log.exception("state listener failed")
