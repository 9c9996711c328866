"""A conversation obeys its controls at once: a button or SIGTERM while connecting, and a quick
push-to-talk press-and-release during an answer."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.state import State
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import make_settings, press, running, wait_until

pytestmark = pytest.mark.e2e


async def test_button_ends_a_conversation_that_is_still_connecting(card: FifoSoundCard, mock_pins: object) -> None:
    async with FakeRealtimeServer(handshake_delay_s=8.0) as server:
        app = Appliance(make_settings(realtime={"url": server.url, "connect_timeout_s": 20},
                                      button={"pin": 17, "bounce_s": 0}), "sk-test", detector=None)
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            await press(button)
            await wait_until(lambda: app.state.state == State.CONNECTING, 5, "connecting", log)
            await asyncio.sleep(0.3)
            await press(button)
            # Back to idle long before the 8 s handshake could have finished.
            await wait_until(lambda: app.state.state == State.IDLE, 3, "idle after the press", log)
            assert log.events("conversation_end")[-1]["reason"] == "button"
            assert not log.events("session_open")


async def test_stop_while_connecting_returns_promptly(card: FifoSoundCard, mock_pins: object) -> None:
    async with FakeRealtimeServer(handshake_delay_s=8.0) as server:
        app = Appliance(make_settings(realtime={"url": server.url, "connect_timeout_s": 20},
                                      button={"pin": 17, "bounce_s": 0}), "sk-test", detector=None)
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        await wait_until(lambda: app.audio_ok, 10, "streams open")
        await press(mock_pins.pin(17))  # type: ignore[attr-defined]
        await wait_until(lambda: app.state.state == State.CONNECTING, 5, "connecting")
        stopped_at = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 10)
        # Inside compose's and Kubernetes' 10 s grace, with room to spare (the handshake takes 8 s).
        assert time.monotonic() - stopped_at < 4


async def test_quick_push_to_talk_tap_during_an_answer_does_not_leave_the_mic_open(
    card: FifoSoundCard, mock_pins: object
) -> None:
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", 24000), 4)
    async with FakeRealtimeServer(reply_audio=reply.tobytes(), reply_chunk_interval_s=None) as server:
        settings = make_settings(realtime={"url": server.url}, earcons={"wake": False},
                                 button={"pin": 17, "bounce_s": 0, "mode": "hold"}, session={"idle_timeout_s": 30})
        app = Appliance(settings, "sk-test", detector=None)
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            button.drive_low()
            await asyncio.sleep(0.1)
            card.say(read_wav(FIXTURES / "what_time_only.wav", card.rate))
            card.wait_said(15)
            button.drive_high()
            await wait_until(lambda: app.state.state == State.SPEAKING, 20, "the answer", log)
            conversation = app.conversation
            assert conversation is not None
            # Press and release arrive back to back, before any task of the press has run.
            app.buttons.short_press()
            app.buttons.release()
            await asyncio.sleep(1.0)
            assert conversation._talking is False  # the turn is closed: the mic is not streaming
            assert [e["action"] for e in log.events("button")][-2:] == ["talk", "commit"]
