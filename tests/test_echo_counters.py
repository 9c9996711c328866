"""How often devices hear themselves, in the metrics: `appliance_aec_leaks_total` (the microphone
worker caught the trusted canceller leaking the answer's echo) and `appliance_aec_gating_total{reason}`
(a conversation switched to gating the microphone while the agent speaks), each once per occurrence,
fed through the event bus like every other metric."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from appliance.audio.aec import speexdsp_available
from appliance.conversation import echo_guard
from appliance.conversation.echo_guard import EchoGuard
from appliance.conversation.session import Conversation
from appliance.events import ApplianceEvent, EventBus
from appliance.state import State, StateMachine
from appliance.telemetry import Telemetry
from tests.inproc import make_settings


class AlwaysPlaying:
    rate = 24000

    def was_audible(self, t: float, tail_s: float = 0.0) -> bool:
        return True


def metered() -> tuple[EventBus, Telemetry, list[ApplianceEvent]]:
    bus, telemetry = EventBus(), Telemetry()
    seen: list[ApplianceEvent] = []
    bus.subscribe(seen.append)
    bus.subscribe(telemetry.on_event)
    return bus, telemetry, seen


def gating(telemetry: Telemetry, reason: str) -> float | None:
    return telemetry.registry.get_sample_value("appliance_aec_gating_total", {"reason": reason})


def aec_guard(bus: EventBus) -> EchoGuard:
    guard = EchoGuard(make_settings(audio={"echo": "aec"}), AlwaysPlaying(), bus.publish)  # type: ignore[arg-type]
    guard.echo_canceller_ready = lambda: True
    return guard


@pytest.mark.skipif(not speexdsp_available(), reason="libspeexdsp not loadable")
def test_each_leak_the_microphone_worker_catches_is_counted() -> None:
    """The real worker and canceller: a loud echo drifting against the reference (issue 18 item 8)
    leaks through the trusted canceller, and each withdrawal of trust is one `aec_leak`."""
    from tests.test_echo_alignment import _model_audio

    bus, telemetry, seen = metered()
    assert telemetry.registry.get_sample_value("appliance_aec_leaks_total") == 0
    _model_audio(0, repeats=3, echo_scale=0.35, wobble_ms=0.25, publish=bus.publish)
    leaks = [e for e in seen if e.name == "aec_leak"]
    assert leaks, "the scenario no longer leaks: the test proves nothing"
    assert telemetry.registry.get_sample_value("appliance_aec_leaks_total") == len(leaks)


async def test_the_model_hearing_its_echo_is_counted_once_per_conversation() -> None:
    bus, telemetry, seen = metered()
    guard = aec_guard(bus)
    guard.model_heard_echo = lambda: True
    guard.answer_started()
    for _ in range(3):  # gating already: later speech changes nothing and counts nothing
        guard.speech_heard(agent_speaking=True)
    assert guard.withheld(time.monotonic())
    assert gating(telemetry, "self_interruption") == 1
    assert gating(telemetry, "late_leak") == gating(telemetry, "early_interruptions") == 0
    assert [e.name for e in seen] == ["aec_gating"]


@pytest.mark.parametrize("leaked", [True, False])
async def test_a_late_leak_is_counted_when_it_gates(monkeypatch: pytest.MonkeyPatch, leaked: bool) -> None:
    monkeypatch.setattr(echo_guard, "LATE_LEAK_S", 0.05)
    bus, telemetry, _ = metered()
    guard = aec_guard(bus)
    leaks = [3]
    guard.model_heard_echo = lambda: False  # the instant verdict: a person
    guard.echo_leaks = lambda: leaks[0]
    guard.speech_heard(agent_speaking=True)
    if leaked:
        leaks[0] += 1  # the worker's verdict on the same audio, a few blocks later
    await asyncio.sleep(0.15)
    assert gating(telemetry, "late_leak") == (1 if leaked else 0)
    assert gating(telemetry, "self_interruption") == gating(telemetry, "early_interruptions") == 0


async def test_two_answers_cut_off_early_are_counted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backstop gates on the second early cut-off; the late look that second speech scheduled
    finds a leak too, but the conversation gates already: one switch, one count."""
    monkeypatch.setattr(echo_guard, "LATE_LEAK_S", 0.05)
    bus, telemetry, seen = metered()
    guard = aec_guard(bus)
    leaks = [0]
    guard.model_heard_echo = lambda: False
    guard.echo_leaks = lambda: leaks[0]
    for _ in range(2):
        guard.answer_started()
        guard.speech_heard(agent_speaking=True)
    assert gating(telemetry, "early_interruptions") == 1
    leaks[0] += 1
    await asyncio.sleep(0.15)
    assert gating(telemetry, "late_leak") == 0
    assert [e.name for e in seen] == ["aec_gating"]


async def test_a_conversation_publishes_its_gating_on_the_appliance_bus() -> None:
    """Wired as the appliance runs it: the conversation's guard publishes on the state machine's bus,
    which feeds the metrics (a guard that only logged would count nothing)."""
    bus, telemetry, _ = metered()
    state = StateMachine(bus)
    conversation = Conversation(make_settings(audio={"echo": "aec"}), "sk-test", AlwaysPlaying(),  # type: ignore[arg-type]
                                None, state)  # type: ignore[arg-type]
    conversation.echo.echo_canceller_ready = lambda: True
    conversation.echo.model_heard_echo = lambda: True
    for step in (State.WAKING, State.CONNECTING, State.LISTENING, State.SPEAKING):
        state.to(step)
    speech = SimpleNamespace(type="raw_model_event", data=SimpleNamespace(
        type="raw_server_event", data={"type": "input_audio_buffer.speech_started"}))
    conversation._handle(speech)  # type: ignore[arg-type]
    assert gating(telemetry, "self_interruption") == 1
