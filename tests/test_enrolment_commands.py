"""Enrolment from the device, its commands without audio: every refusal says why (muted, in a
conversation, already enrolling, a bad name or take count, no openWakeWord model to enrol against),
the API's `enroll` / `profiles` / `forget_profile` answer through `Controls`, the button and `stop`
cancel, and the voice tool asks for the same enrolment after the conversation."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import pytest
import soxr

from appliance import enrolment_flow
from appliance.app import Appliance
from appliance.conversation.tools import ConversationControl, ToolServices, builtin_tools
from appliance.conversation.tools.errors import is_error_result
from appliance.enrolment_events import EnrolFailed, EnrolTake, ProfileForgotten
from appliance.events import ApplianceEvent, EventBus
from appliance.state import State
from appliance.triggers.enrolment import PersonalVerifier, TrainedProfile
from appliance.triggers.profiles import ProfileStore
from appliance.triggers.wake_scan import read_wav_16k
from appliance.triggers.wakeword import WakeWordDetector
from appliance.web.commands import run_command
from tests.inproc import make_settings
from tests.test_agent_tools import call


class Device:
    def __init__(self, app: Appliance) -> None:
        self.controls = app.controls
        self.state = app.state


@pytest.fixture(scope="module")
def jarvis() -> WakeWordDetector:
    return WakeWordDetector(["hey_jarvis"])


def appliance(detector: Any, **settings: Any) -> Appliance:
    return Appliance(make_settings(**settings), "sk-test", detector)


def command(app: Appliance, **message: Any) -> dict[str, Any]:
    reply, _ = run_command(Device(app), json.dumps(message))  # type: ignore[arg-type]
    return reply


def test_refused_while_muted_in_a_conversation_or_enrolling(jarvis: WakeWordDetector) -> None:
    app = appliance(jarvis)
    app.controls.set_muted(True)
    assert command(app, command="enroll", name="anna") == {
        "event": "ack", "command": "enroll", "ok": False, "error": "cannot enrol while muted: unmute first"}
    app.controls.set_muted(False)
    app.state.to(State.WAKING)
    app.state.to(State.CONNECTING)
    assert app.controls.enroll("anna").error == "cannot enrol during a conversation: end it first"
    app.state.to(State.IDLE)
    app.state.to(State.ENROLLING)
    assert app.controls.enroll("anna").error == "a voice is being enrolled already"
    app.state.to(State.IDLE)
    app.state.to(State.RINGING)
    assert app.controls.enroll("anna").error == "cannot enrol while ringing"


def test_a_bad_name_or_take_count_is_refused_with_the_rule(jarvis: WakeWordDetector) -> None:
    app = appliance(jarvis)
    assert app.controls.enroll("  ").error == "a profile name is 1-40 printable characters, got '  '"
    assert "1-40 printable characters" in str(app.controls.enroll("x" * 41).error)
    assert app.controls.enroll("anna", takes=2).error == "takes must be 3 to 10 (5 are best), got 2"
    assert command(app, command="enroll")["error"] == 'name must be a string, e.g. {"name": "anna"}'
    assert command(app, command="enroll", name="anna", takes="five")["error"] == (
        "takes must be a whole number from 3 to 10")
    assert command(app, command="enroll", name="anna", takes=True)["ok"] is False
    # Every check passed but the audio is not open (the appliance is not running): refused, not begun.
    assert app.controls.enroll("anna").error == "the audio devices are reopening"
    assert app.state.state == State.IDLE


def test_micro_wake_word_models_alone_cannot_enrol() -> None:
    app = appliance(WakeWordDetector(["micro:okay_nabu"]), wake={"models": ["micro:okay_nabu"]})
    error = str(app.controls.enroll("anna").error)
    assert error.startswith("the wake models (micro:okay_nabu) have no openWakeWord model to enrol against")
    assert "APPLIANCE_WAKE__MODELS=hey_jarvis,micro:okay_nabu" in error
    assert app.controls.enroll_after_conversation("anna").error == error
    without = appliance(None)  # no wake word at all (push-to-talk only)
    assert "the wake word is not running" in str(without.controls.enroll("anna").error)


def test_profiles_list_and_forget_answer_without_enrolments(jarvis: WakeWordDetector) -> None:
    app = appliance(jarvis)
    assert command(app, command="profiles") == {"event": "ack", "command": "profiles", "ok": True, "profiles": []}
    assert command(app, command="forget_profile", name="bob")["error"] == "no enrolled voice named 'bob'"
    assert command(app, command="stop")["error"] == "no conversation in progress"


def test_forgetting_a_voice_tells_every_client(jarvis: WakeWordDetector, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.enrolment")
    app = appliance(jarvis)
    seen: list[ApplianceEvent] = []
    app.events.subscribe(seen.append)
    dim = 16 * 96
    blank = np.zeros((2, dim), np.float32)
    trained = TrainedProfile(PersonalVerifier(np.zeros(dim, np.float32), 0.0), blank, blank, takes=5, train_s=1.0)
    ProfileStore(app.store).save("anna", "hey_jarvis", trained)
    # Nothing forgotten (no such voice): nothing to tell.
    assert app.controls.forget_profile("bob").ok is False
    assert not [e for e in seen if isinstance(e, ProfileForgotten)]
    assert command(app, command="forget_profile", name="anna")["ok"] is True
    forgotten = [e for e in seen if isinstance(e, ProfileForgotten)]
    assert [e.as_dict() for e in forgotten] == [{"event": "profile_forgotten", "name": "anna", "profile": "anna"}]
    assert app.controls.profiles().values == {"profiles": []}
    # Its log line names the voice as `profile` (a `name` would clash with the LogRecord's own).
    lines = [r for r in caplog.records if getattr(r, "event", None) == "profile_forgotten"]
    assert [(r.getMessage(), getattr(r, "profile", None)) for r in lines] == [("voice 'anna' forgotten", "anna")]
    # Gone once: forgetting it again is refused and tells nobody.
    assert app.controls.forget_profile("anna").ok is False
    assert len([e for e in seen if isinstance(e, ProfileForgotten)]) == 1


async def test_stop_and_the_button_cancel_an_enrolment_back_to_idle(jarvis: WakeWordDetector) -> None:
    app = appliance(jarvis)
    flow = app.controls.enrolment
    assert flow is not None
    seen: list[Any] = []
    app.events.subscribe(seen.append)
    app.events.bind_loop(asyncio.get_running_loop())

    class Pipeline:  # the audio is open; no block ever comes (the take is being waited for)
        def open_sink(self, max_seconds: float) -> Any:
            from appliance.audio.pipeline import AudioSink

            seen.append("opened")
            return AudioSink(100)

        def close_sink(self) -> None:
            seen.append("closed")

    app.audio.pipeline = Pipeline()  # type: ignore[assignment]
    ack = app.controls.enroll("anna", takes=3)
    assert ack.ok and ack.values == {"name": "anna", "takes": 3, "phrase": "hey jarvis"}
    assert app.state.state == State.ENROLLING
    assert app.controls.start().error == "cannot start while enrolling"
    while "opened" not in seen:  # recording the room before the first chime
        await asyncio.sleep(0.01)
    app.buttons.short_press()
    while flow.active:
        await asyncio.sleep(0.01)
    failed = [e for e in seen if isinstance(e, EnrolFailed)]
    assert [(e.profile, e.reason) for e in failed] == [("anna", "cancelled")]
    assert failed[0].as_dict() == {"event": "enrol_failed", "name": "anna", "profile": "anna", "reason": "cancelled"}
    assert "closed" in seen and app.state.state == State.IDLE
    # Mute cancels too, and the appliance rests muted.
    seen.clear()
    assert app.controls.enroll("anna", takes=3).ok
    while "opened" not in seen:
        await asyncio.sleep(0.01)
    app.controls.set_muted(True)
    while flow.active:
        await asyncio.sleep(0.01)
    assert [e.reason for e in seen if isinstance(e, EnrolFailed)][-1] == "muted"
    assert app.state.state == State.MUTED


async def test_three_bad_takes_in_a_row_end_the_enrolment(jarvis: WakeWordDetector) -> None:
    app = appliance(jarvis)
    app.events.bind_loop(asyncio.get_running_loop())
    seen: list[Any] = []
    app.events.subscribe(seen.append)

    class SilentPipeline:  # a microphone in a silent room: every take is refused ("no speech was heard")
        def open_sink(self, max_seconds: float) -> Any:
            from appliance.audio.pipeline import AudioSink

            sink = AudioSink(1000)
            soon = time.monotonic() + 0.01  # captured after the sink opened
            for _ in range(int(max_seconds * 50)):
                sink.put(bytes(960), soon)  # 20 ms at 24 kHz
            return sink

        def close_sink(self) -> None:
            pass

    app.audio.pipeline = SilentPipeline()  # type: ignore[assignment]
    assert app.controls.enroll("anna").ok
    flow = app.controls.enrolment
    assert flow is not None
    while flow.active:
        await asyncio.sleep(0.01)
    takes = [(e.take, e.ok, e.reason) for e in seen if isinstance(e, EnrolTake)]
    no_speech = "no speech was heard in the take: say the wake phrase closer to the microphone"
    assert takes == [(1, False, no_speech)] * 3
    (failed,) = [e for e in seen if isinstance(e, EnrolFailed)]
    assert failed.reason == f"3 takes in a row were refused (the last: {no_speech})"
    assert app.state.state == State.IDLE and app.controls.profiles().values == {"profiles": []}


async def test_the_takes_and_the_room_between_them_go_to_training(jarvis: WakeWordDetector,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_wake_enrolment import TAKES

    rng = np.random.default_rng(0)
    room = (rng.standard_normal(24_000 * 3) * 30).astype(np.int16)  # a quiet room, 3 s at 24 kHz
    takes = [np.clip(np.round(soxr.resample(read_wav_16k(p).astype(np.float32), 16_000, 24_000)), -32768, 32767)
             .astype(np.int16) for p in TAKES[:3]]
    opened: list[int] = []

    class Pipeline:  # the room before each chime, then a take after it
        def open_sink(self, max_seconds: float) -> Any:
            from appliance.audio.pipeline import AudioSink

            audio = room if len(opened) % 2 == 0 else np.concatenate((takes[len(opened) // 2], room))
            opened.append(len(audio))
            sink = AudioSink(1000)
            for start in range(0, len(audio), 480):
                sink.put(audio[start:start + 480].tobytes(), time.monotonic() + 0.01)
            return sink

        def close_sink(self) -> None:
            pass

    trained: list[tuple[int, np.ndarray | None]] = []

    def train(engine: Any, good: list[np.ndarray], model: str, background: np.ndarray | None) -> Any:
        trained.append((len(good), background))
        raise ValueError("stopped here by the test")

    monkeypatch.setattr(enrolment_flow, "_train", train)
    app = appliance(jarvis)
    app.events.bind_loop(asyncio.get_running_loop())
    seen: list[Any] = []
    app.events.subscribe(seen.append)
    app.audio.pipeline = Pipeline()  # type: ignore[assignment]
    assert app.controls.enroll("anna", takes=3).ok
    flow = app.controls.enrolment
    assert flow is not None
    while flow.active:
        await asyncio.sleep(0.01)
    assert [(e.take, e.ok) for e in seen if isinstance(e, EnrolTake)] == [(1, True), (2, True), (3, True)]
    ((count, background),) = trained
    assert count == 3 and background is not None
    assert len(background) == 3 * round(enrolment_flow.BACKGROUND_S * 16_000)  # 1.5 s before each chime
    assert 15 < float(np.std(background)) < 60  # the room, resampled to 16 kHz: not a take
    assert [e.reason for e in seen if isinstance(e, EnrolFailed)] == ["training failed: stopped here by the test"]


def test_a_take_event_always_carries_its_reason() -> None:
    good = EnrolTake(profile="anna", take=2, ok=True, reason=None, score=0.91)
    assert good.as_dict() == {"event": "enrol_take", "name": "anna", "profile": "anna", "take": 2, "ok": True,
                              "reason": None, "score": 0.91}


class Enrolment:
    """Stands in for `Controls` (its `enroll_after_conversation`)."""

    def __init__(self, error: str | None = None) -> None:
        self.asked: list[str] = []
        self.error = error

    def enroll_after_conversation(self, name: str) -> Any:
        from appliance.controls import Ack

        self.asked.append(name)
        if self.error:
            return Ack(False, self.error)
        return Ack(True, values={"name": name, "takes": 5, "phrase": "hey jarvis"})


async def test_the_voice_tool_asks_for_enrolment_after_the_conversation() -> None:
    enrolment = Enrolment()
    control = ConversationControl(EventBus())
    tools = builtin_tools(ToolServices(make_settings(), enrolment=enrolment), control)
    text = await call(tools["learn_my_voice"], name="")
    assert enrolment.asked == ["household"] and control.goodbye.is_set()
    assert 'chime 5 times; after each chime the person says "hey jarvis"' in text
    refused = Enrolment("cannot enrol while muted: unmute first")
    tools = builtin_tools(ToolServices(make_settings(), enrolment=refused), ConversationControl(EventBus()))
    result = await call(tools["learn_my_voice"], name="Anna")
    assert is_error_result(result) and "unmute first" in result and refused.asked == ["Anna"]
