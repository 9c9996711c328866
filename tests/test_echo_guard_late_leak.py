"""EchoGuard's late look: the microphone worker judges the canceller's output a few blocks after the
model heard it. When the model reports speech while the agent speaks, the instant check calls it a
person, and the worker catches the echo leaking within `LATE_LEAK_S`, the model heard the echo: the
rest of the conversation gates the microphone while the speaker plays (CI, 2026-12-03: the answer
was cut off by its own echo 40 ms before the worker's `aec_leak`)."""

from __future__ import annotations

import asyncio
import time

import pytest

from appliance.conversation import echo_guard
from appliance.conversation.echo_guard import EchoGuard
from tests.inproc import make_settings


class AlwaysPlaying:
    def was_audible(self, t: float, tail_s: float = 0.0) -> bool:
        return True


@pytest.mark.parametrize("leaked", [True, False])
async def test_a_leak_caught_just_after_the_model_heard_speech_gates_the_rest(
        monkeypatch: pytest.MonkeyPatch, leaked: bool) -> None:
    monkeypatch.setattr(echo_guard, "LATE_LEAK_S", 0.05)
    guard = EchoGuard(make_settings(audio={"echo": "aec"}), AlwaysPlaying())  # type: ignore[arg-type]
    leaks = [3]
    guard.echo_canceller_ready = lambda: True
    guard.model_heard_echo = lambda: False  # the instant verdict: a person
    guard.echo_leaks = lambda: leaks[0]
    guard.answer_started()
    guard.speech_heard(agent_speaking=True)
    assert not guard.withheld(time.monotonic())  # a person talks over the answer: they are heard
    if leaked:
        leaks[0] += 1  # the worker's verdict, a few blocks later
    await asyncio.sleep(0.15)
    assert guard.withheld(time.monotonic()) == leaked


async def test_a_leak_long_after_the_speech_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(echo_guard, "LATE_LEAK_S", 0.05)
    guard = EchoGuard(make_settings(audio={"echo": "aec"}), AlwaysPlaying())  # type: ignore[arg-type]
    leaks = [0]
    guard.echo_canceller_ready = lambda: True
    guard.model_heard_echo = lambda: False
    guard.echo_leaks = lambda: leaks[0]
    guard.speech_heard(agent_speaking=True)
    await asyncio.sleep(0.15)
    leaks[0] += 1  # re-learning later is the pipeline's business, not a verdict on that speech
    assert not guard.withheld(time.monotonic())
