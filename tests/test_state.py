from __future__ import annotations

import json
import logging

import pytest

from appliance.events import ApplianceEvent, EventBus, StateChanged, log_subscriber
from appliance.logs import JsonFormatter
from appliance.state import InvalidTransition, State, StateMachine


def test_conversation_cycle_and_listeners() -> None:
    sm = StateMachine()
    seen: list[tuple[str, str]] = []
    sm.events.subscribe(lambda e: seen.append((e.previous, e.state)) if isinstance(e, StateChanged) else None)
    for s in (State.WAKING, State.CONNECTING, State.LISTENING, State.THINKING, State.SPEAKING, State.LISTENING,
              State.IDLE):
        sm.to(s)
    assert [n for _, n in seen] == [State.WAKING, State.CONNECTING, State.LISTENING, State.THINKING,
                                    State.SPEAKING, State.LISTENING, State.IDLE]


def test_invalid_transition_is_refused() -> None:
    sm = StateMachine()
    with pytest.raises(InvalidTransition):
        sm.to(State.SPEAKING)
    assert sm.state == State.IDLE


def test_a_failing_subscriber_does_not_break_the_machine_or_the_others() -> None:
    bus = EventBus()
    seen: list[ApplianceEvent] = []
    bus.subscribe(lambda e: 1 / 0)
    bus.subscribe(seen.append)
    sm = StateMachine(bus)
    sm.to(State.WAKING)
    assert sm.state == State.WAKING
    assert [e.as_dict() for e in seen] == [{"event": "state", "state": "waking", "previous": "idle"}]


def test_state_log_line_is_json(caplog: pytest.LogCaptureFixture) -> None:
    sm = StateMachine()
    sm.events.subscribe(log_subscriber)
    with caplog.at_level(logging.INFO, logger="appliance.state"):
        sm.to(State.MUTED, reason="button")
    record = caplog.records[-1]
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "state" and line["state"] == "muted" and line["previous"] == "idle"
    assert line["reason"] == "button" and line["logger"] == "appliance.state" and line["msg"] == "idle -> muted"


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    seen: list[ApplianceEvent] = []
    unsubscribe = bus.subscribe(seen.append)
    sm = StateMachine(bus)
    sm.to(State.WAKING)
    unsubscribe()
    sm.to(State.CONNECTING)
    assert [e.as_dict()["state"] for e in seen] == ["waking"]
