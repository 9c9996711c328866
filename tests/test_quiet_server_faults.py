"""A server that goes quiet in two ways the SDK does not report: it accepts the websocket and never
sends a thing, or it answers a turn with a failed response (rate limited). Each gets one log line
naming it; the first ends the conversation, the second lets the person ask again."""

from __future__ import annotations

import pytest

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer, ScriptedResponse
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import make_settings, press, running, wait_until

pytestmark = pytest.mark.e2e
BUTTON = 17


def make_app(server: FakeRealtimeServer) -> Appliance:
    settings = make_settings(realtime={"url": server.url, "connect_timeout_s": 1.5},
                             button={"pin": BUTTON, "bounce_s": 0}, session={"idle_timeout_s": 30})
    return Appliance(settings, "sk-test", None)


async def test_a_server_that_accepts_and_never_answers_fails_the_conversation(
    card: FifoSoundCard, mock_pins: object
) -> None:
    async with FakeRealtimeServer() as server:
        server.never_answer(True)
        app = make_app(server)
        button = mock_pins.pin(BUTTON)  # type: ignore[attr-defined]
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            await press(button)
            await wait_until(lambda: bool(log.events("error")), 10, "the error", log)
            await wait_until(lambda: log.states()[-1] == "idle", 10, "idle again", log)
            server.never_answer(False)
            await press(button)
            await wait_until(lambda: log.states().count("listening") == 2, 10, "a working session", log)
    [error] = log.events("error")
    assert error["kind"] == "connect_timeout" and "sent nothing" in error["message"]


async def test_a_failed_response_is_logged_and_the_person_can_ask_again(
    card: FifoSoundCard, mock_pins: object
) -> None:
    async with FakeRealtimeServer(script=[ScriptedResponse.failing("rate_limit_exceeded")]) as server:
        app = make_app(server)
        button = mock_pins.pin(BUTTON)  # type: ignore[attr-defined]
        question = read_wav(FIXTURES / "what_time_only.wav", card.rate)
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            await press(button)
            await wait_until(lambda: "listening" in log.states(), 10, "the session", log)
            card.say(question)
            await wait_until(lambda: bool(log.events("session_error")), 15, "the failure", log)
            await wait_until(lambda: log.states()[-1] == "listening", 5, "listening again", log)
            card.say(question)  # asked again: this time the default answer comes
            await wait_until(lambda: "speaking" in log.states(), 15, "the answer", log)
    [failure] = log.events("session_error")
    assert "rate_limit_exceeded" in failure["message"] and failure["levelname"] == "WARNING"
    assert not log.events("error")
