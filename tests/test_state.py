from __future__ import annotations

import json
import logging

import pytest

from appliance.logs import JsonFormatter
from appliance.state import InvalidTransition, State, StateMachine


def test_conversation_cycle_and_listeners() -> None:
    sm = StateMachine()
    seen: list[tuple[State, State]] = []
    sm.subscribe(lambda old, new: seen.append((old, new)))
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


def test_a_failing_listener_does_not_break_the_machine() -> None:
    sm = StateMachine()
    sm.subscribe(lambda old, new: 1 / 0)
    sm.to(State.WAKING)
    assert sm.state == State.WAKING


def test_state_log_line_is_json(caplog: pytest.LogCaptureFixture) -> None:
    sm = StateMachine()
    with caplog.at_level(logging.INFO, logger="appliance.state"):
        sm.to(State.MUTED)
    record = caplog.records[-1]
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "state" and line["state"] == "muted" and line["previous"] == "idle"
