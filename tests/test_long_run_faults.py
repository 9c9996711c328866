"""Faults a months-long run meets: a failing or stuck microphone worker, a vanished speaker, a
PortAudio call that hangs, counters across reopened streams, a device that stalls right after opening."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.audio import capture
from appliance.state import State
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import make_settings, press, running, wait_until

pytestmark = pytest.mark.e2e


class FailingDetector:
    """A wake-word detector that raises (LiteRT, soxr or memory trouble) `failures` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def process(self, samples: np.ndarray) -> list[Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise MemoryError("simulated")
        return []


async def test_a_failing_block_is_skipped_and_the_worker_keeps_running(card: FifoSoundCard) -> None:
    detector = FailingDetector(failures=3)
    app = Appliance(make_settings(), "sk-test", detector=detector)  # type: ignore[arg-type]
    async with running(app) as log:
        await wait_until(lambda: detector.calls > 20, 10, "the worker to go on after the failures", log)
        assert app.pipeline is not None and app.pipeline.alive and app.pipeline.failed_blocks == 3
        assert len(log.events("pipeline_error")) == 1  # one line, not one per failed block
        assert log.events("pipeline_error")[0]["error"] == "MemoryError"
        assert app.telemetry.registry.get_sample_value("appliance_mic_block_failures_total") == 1
        assert app.health() == (True, "ok")
        assert not log.events("error")


async def test_a_worker_that_keeps_failing_is_an_audio_fault_and_the_audio_reopens(card: FifoSoundCard) -> None:
    detector = FailingDetector(failures=10**9)
    app = Appliance(make_settings(), "sk-test", detector=detector)  # type: ignore[arg-type]
    async with running(app) as log:
        await wait_until(lambda: bool(log.events("error")), 10, "the fault", log)
        assert "microphone processing keeps failing: MemoryError" in log.events("error")[0]["message"]
        assert log.events("error")[0]["kind"] == "audio_device"
        await wait_until(lambda: bool(log.events("recovered")), 10, "the audio to reopen", log)


async def test_health_sees_a_stuck_microphone_worker(card: FifoSoundCard) -> None:
    stuck = threading.Event()

    class StuckDetector:
        def process(self, samples: np.ndarray) -> list[Any]:
            stuck.wait(30)  # e.g. an interpreter call that never returns
            return []

    app = Appliance(make_settings(health={"enabled": False, "stale_after_s": 1.0}), "sk-test",
                    detector=StuckDetector())  # type: ignore[arg-type]
    try:
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            await wait_until(lambda: not app.health()[0], 5, "health to fail", log)
            assert "microphone worker last ticked" in app.health()[1]
    finally:
        stuck.set()


async def test_losing_the_speaker_mid_answer_ends_the_conversation_and_reopens(
    card: FifoSoundCard, mock_pins: object
) -> None:
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", 24000), 6)
    async with FakeRealtimeServer(reply_audio=reply.tobytes(), reply_chunk_interval_s=None) as server:
        app = Appliance(make_settings(realtime={"url": server.url}, button={"pin": 17, "bounce_s": 0},
                                      session={"idle_timeout_s": 30}), "sk-test", detector=None)
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            await press(mock_pins.pin(17))  # type: ignore[attr-defined]
            await wait_until(lambda: app.state.state == State.LISTENING, 10, "listening", log)
            card.say(read_wav(FIXTURES / "what_time_only.wav", card.rate))
            await wait_until(lambda: app.state.state == State.SPEAKING, 20, "the answer", log)
            player = app.player
            assert player is not None and player._stream is not None
            player._stream.abort()  # the speaker (USB, HDMI) went away
            await wait_until(lambda: bool(log.events("error")), 5, "the fault", log)
            error = log.events("error")[0]
            assert error["kind"] == "audio_device" and "output stream stopped" in error["message"]
            await wait_until(lambda: bool(log.events("recovered")), 10, "the audio to reopen", log)
            await wait_until(lambda: app.state.state == State.IDLE, 5, "idle", log)
            assert app.player is not player and app.player is not None and app.player.active


async def test_a_hung_portaudio_open_neither_freezes_the_loop_nor_delays_the_stop(
    card: FifoSoundCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    hang = threading.Event()
    monkeypatch.setattr(capture.MicStream, "start", lambda self: hang.wait(60))
    app = Appliance(make_settings(), "sk-test", detector=None)
    app.audio.control.timeout_s = 1.0
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        await wait_until(lambda: app.state.state == State.ERROR, 5, "the error")
        ticked = app.last_tick
        await asyncio.sleep(1.5)
        assert app.last_tick > ticked  # the loop's heartbeat goes on while PortAudio hangs
        stopped_at = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - stopped_at < 3  # SIGTERM is answered, not left to SIGKILL
    finally:
        hang.set()


async def test_audio_counters_only_go_up_across_reopened_streams(card: FifoSoundCard) -> None:
    app = Appliance(make_settings(), "sk-test", detector=None)
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams", log)
        mic = app.mic
        assert mic is not None and mic._stream is not None
        mic.stats.overflows += 3
        mic.stats.dropped_blocks += 2
        before = app.audio_stats()
        mic._stream.abort()
        await wait_until(lambda: app.audio_ok and app.mic is not mic, 10, "new streams", log)
        after = app.audio_stats()
    assert before["overruns"] == 3 and before["dropped_blocks"] == 2
    assert after["overruns"] >= 3 and after["dropped_blocks"] >= 2


async def test_a_device_that_stalls_right_after_opening_backs_off_further(card: FifoSoundCard) -> None:
    app = Appliance(make_settings(session={"error_backoff_s": 0.2, "error_backoff_max_s": 5}), "sk-test",
                    detector=None)
    async with running(app) as log:
        for _ in range(3):
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            mic = app.mic
            assert mic is not None and mic._stream is not None
            mic._stream.abort()  # opens, then stops at once, again and again
            await wait_until(lambda m=mic: app.mic is not m and app.audio_ok, 10, "reopened", log)
    delays = [e["retry_in_s"] for e in log.events("error") if e.get("retry_in_s") is not None]
    assert delays[:3] == [0.2, 1.0, 2.0], delays
