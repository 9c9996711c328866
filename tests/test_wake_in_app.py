"""The real wake-word detector inside the running appliance (in-process): a long press mutes it,
and the wake word said while the agent talks interrupts the answer (barge-in)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soxr

from appliance.app import Appliance
from appliance.indicators.earcons import load_earcon
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from appliance.triggers.wakeword import WakeWordDetector
from tests.audio_compare import FIXTURES, best_match, read_wav
from tests.inproc import make_settings, running, wait_until

pytestmark = pytest.mark.e2e

RED, GREEN, BLUE = 5, 6, 13


@pytest.fixture(scope="module")
def detector_factory() -> object:
    np.random.seed(0)  # openWakeWord fills its buffers with noise: keep runs alike
    return lambda: WakeWordDetector(["hey_jarvis"], 0.5, refractory_s=2.0, seed=0)


async def test_long_press_mutes_the_wake_word(card: FifoSoundCard, mock_pins: object, detector_factory) -> None:  # type: ignore[no-untyped-def]
    async with FakeRealtimeServer() as server:
        settings = make_settings(realtime={"url": server.url}, button={"pin": 17, "bounce_s": 0, "hold_s": 0.5},
                                 leds={"red_pin": RED, "green_pin": GREEN, "blue_pin": BLUE})
        app = Appliance(settings, "sk", detector_factory())
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        wake = read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate)
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            button.drive_low()
            await wait_until(lambda: app.state.state.value == "muted", 5, "muted", log)
            button.drive_high()
            red = mock_pins.pin(RED)  # type: ignore[attr-defined]
            assert red.state == 1 and mock_pins.pin(GREEN).state == 0  # type: ignore[attr-defined]
            card.say(wake)
            card.wait_said(15)
            await asyncio.sleep(1.0)
            assert log.events("wake") == [] and server.connections == []
            # Unmute, and the same words wake it.
            button.drive_low()
            await wait_until(lambda: app.state.state.value == "idle", 5, "unmuted", log)
            button.drive_high()
            card.say(wake)
            await wait_until(lambda: bool(log.events("wake")), 15, "a wake", log)
    assert log.events("wake")[0]["source"] == "wakeword"


async def test_wake_word_during_the_answer_interrupts_it(card: FifoSoundCard, detector_factory) -> None:  # type: ignore[no-untyped-def]
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", 24000), 5)  # about 9 s of answer
    async with FakeRealtimeServer(reply_audio=reply.tobytes(), reply_chunk_interval_s=None) as server:
        app = Appliance(make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 30}), "sk",
                        detector_factory())
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
            await wait_until(lambda: "speaking" in log.states(), 30, "the answer", log)
            await asyncio.sleep(1.0)
            card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
            await wait_until(lambda: any(w.get("barge_in") for w in log.events("wake")), 15, "barge-in", log)
            await wait_until(lambda: log.states()[-1] == "listening", 5, "listening again", log)
            assert app.player is not None and app.player.queued_ms < 50  # the rest of the answer is gone
    # The wake chime played at the start, through the normal playback path.
    chime = soxr.resample((load_earcon("wake") * 0.6).astype(np.int16), 24000, card.rate)
    score, _ = best_match(card.speaker_audio(), chime)
    assert score >= 0.9
    assert server.cancels or server.truncations
