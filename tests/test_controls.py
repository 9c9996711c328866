"""The one command surface: each command's checks (muted, ringing, busy) and acks, the same from
every input (the API adapter, the button adapter), without devices or a running loop."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from appliance.button_actions import ButtonActions
from appliance.controls import Ack, Controls
from appliance.events import ApplianceEvent, EventBus, Wake
from appliance.settings import ButtonSettings
from appliance.state import State, StateMachine
from appliance.store import Store
from appliance.web.commands import run_command


class FakeConversation:
    def __init__(self) -> None:
        self.ended: list[str] = []
        self.barged = 0

    def end(self, reason: str) -> None:
        self.ended.append(reason)

    async def barge_in(self) -> None:
        self.barged += 1


class FakeLifecycle:
    """Stands in for `Appliance`: records what the commands asked of the lifecycle."""

    def __init__(self, state: StateMachine) -> None:
        self.conversation: Any = None
        self.released_early = False
        self.audio_ready = True
        self.begun: list[Wake] = []
        self.spawned: list[Coroutine[Any, Any, None]] = []
        self.volumes: list[int] = []
        self.elsewhere = 0
        self._state = state

    def begin(self, event: Wake) -> bool:
        if not self.audio_ready:
            return False
        self.begun.append(event)
        self._state.to(State.WAKING, source=event.source)
        return True

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        coro.close()  # not run: the test only checks it was asked for
        self.spawned.append(coro)

    def apply_volume(self, percent: int) -> None:
        self.volumes.append(percent)

    def answered_elsewhere(self) -> None:
        self.elsewhere += 1


class FakeRinger:
    def __init__(self) -> None:
        self.dismissed: list[str] = []
        self.ringing = False

    def dismiss(self, by: str) -> bool:
        if not self.ringing:
            return False
        self.dismissed.append(by)
        return True


class Device:
    """What `web/commands.py` reads: the adapter under test goes through `controls`."""

    def __init__(self, controls: Controls) -> None:
        self.controls = controls
        self.state = controls.state


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Controls, FakeLifecycle, FakeRinger, list[ApplianceEvent]]:
    events = EventBus()
    seen: list[ApplianceEvent] = []
    events.subscribe(seen.append)
    state = StateMachine(events)
    host = FakeLifecycle(state)
    controls = Controls(state, events, Store(tmp_path), host, default_volume=80)
    ringer = FakeRinger()
    controls.ringer = ringer  # type: ignore[assignment]
    return controls, host, ringer, seen


def api(controls: Controls, **message: Any) -> dict[str, Any]:
    reply, _ = run_command(Device(controls), json.dumps(message))  # type: ignore[arg-type]
    return reply


def test_start_is_refused_while_muted_ringing_or_busy(parts: Any) -> None:
    controls, host, ringer, _ = parts
    controls.set_muted(True)
    assert api(controls, command="start") == {"event": "ack", "command": "start", "ok": False,
                                              "error": "cannot start while muted"}
    controls.set_muted(False)
    host.audio_ready = False
    assert controls.start() == Ack(False, "the audio devices are reopening")
    host.audio_ready = True
    assert api(controls, command="start")["ok"] is True and [w.source for w in host.begun] == ["api"]
    assert controls.start("button") == Ack(False, "cannot start while waking")  # busy


def test_stop_and_dismiss_say_when_there_is_nothing_to_do(parts: Any) -> None:
    controls, host, ringer, _ = parts
    assert api(controls, command="stop")["error"] == "no conversation in progress"
    assert api(controls, command="dismiss") == {"event": "ack", "command": "dismiss", "ok": False,
                                                "error": "nothing is ringing"}
    ringer.ringing = True
    assert api(controls, command="dismiss")["ok"] is True and ringer.dismissed == ["api"]
    host.conversation = FakeConversation()
    assert api(controls, command="stop")["ok"] is True and host.conversation.ended == ["api"]


def test_mute_and_volume_acks_carry_the_value_in_effect(parts: Any) -> None:
    controls, host, _, seen = parts
    assert api(controls, command="mute") == {"event": "ack", "command": "mute", "ok": True, "muted": True}
    assert controls.state.state == State.MUTED
    assert api(controls, command="volume", value=130)["error"] == "value must be a number from 0 to 100"
    assert api(controls, command="volume", value=35) == {"event": "ack", "command": "volume", "ok": True,
                                                         "volume": 35}
    assert host.volumes == [35] and [e.name for e in seen].count("volume") == 1


def test_the_button_and_the_wake_word_reach_the_same_commands(parts: Any) -> None:
    controls, host, ringer, seen = parts
    buttons = ButtonActions(controls, ButtonSettings())
    ringer.ringing = True
    controls.state.to(State.RINGING)
    buttons.short_press()  # a ring: the press dismisses it and starts nothing
    assert ringer.dismissed == ["button"] and host.begun == []
    controls.state.to(State.IDLE)
    buttons.long_press()
    assert controls.muted and controls.state.state == State.MUTED
    controls.wake_word(type("D", (), {"model": "hey_jarvis", "score": 0.9, "verifier_score": None})())
    assert host.begun == []  # muted: the wake word is ignored
    buttons.long_press()
    buttons.short_press()
    assert [w.source for w in host.begun] == ["button"]
    host.conversation = FakeConversation()
    controls.state.to(State.CONNECTING)
    controls.state.to(State.LISTENING)
    controls.state.to(State.SPEAKING)
    controls.wake_word(type("D", (), {"model": "hey_jarvis", "score": 0.9, "verifier_score": None})())
    assert len(host.spawned) == 1  # a barge-in
    buttons.short_press()  # in_conversation = "end"
    assert host.conversation.ended == ["button"]
    assert [e.fields().get("action") for e in seen if e.name == "button"] == ["end"]


class OutrankedLater:
    """Arbitration that lets this device answer, then says another device answered too, better."""

    def __init__(self) -> None:
        self.on_outranked: Any = None

    async def should_answer(self, score: float, on_outranked: Any = None) -> bool:
        self.on_outranked = on_outranked
        return True


async def test_a_device_outranked_after_it_answered_ends_what_it_began(parts: Any) -> None:
    controls, host, _, _ = parts
    arbitration = OutrankedLater()
    # Outranked while waking (no conversation yet): the conversation ends as soon as it is made, once.
    await controls._answer_if_chosen(arbitration, Wake(source="wakeword", score=0.6))
    assert controls.state.state == State.WAKING and len(host.begun) == 1
    arbitration.on_outranked("living")
    assert host.elsewhere == 1
    assert controls.take_outranked() is True and controls.take_outranked() is False
    # Outranked with the conversation going: it ends, as the other device's answer carries on.
    controls.state.to(State.IDLE)
    await controls._answer_if_chosen(arbitration, Wake(source="wakeword", score=0.6))
    host.conversation = FakeConversation()
    arbitration.on_outranked("living")
    assert host.conversation.ended == ["answered_elsewhere"] and host.elsewhere == 2
    assert controls.take_outranked() is False
