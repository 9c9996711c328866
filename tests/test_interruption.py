"""Interrupting an answer: playback stops at once and the truncation the SDK sends matches what was
really handed to the speaker (RealtimePlaybackTracker fed by the output stream)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import make_settings, running, start_and_ask, wait_until

pytestmark = pytest.mark.e2e


async def test_interrupt_mid_answer_truncates_where_playback_stopped(
    card: FifoSoundCard, mock_pins: object
) -> None:
    # A long answer (the reply four times) so there is time to interrupt it.
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", 24000), 4)
    async with FakeRealtimeServer(reply_audio=reply.tobytes()) as server:
        settings = make_settings(realtime={"url": server.url}, button={"pin": 17, "bounce_s": 0},
                                 session={"idle_timeout_s": 30})
        app = Appliance(settings, "sk-test", detector=None)
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await start_and_ask(app, log, card, button, read_wav(FIXTURES / "what_time_only.wav", card.rate))
            await asyncio.sleep(1.5)  # let part of it play
            assert app.player is not None
            await server.interrupt_now()
            await wait_until(lambda: bool(server.truncations), 10, "the truncate event", log)
            await asyncio.sleep(0.3)
            played = dict(app.player.stats.item_played_ms)
            silent_after = card.speaker_audio()[-card.rate // 5 :]  # the last 200 ms heard
            app.conversation.end("test") if app.conversation else None

    truncate = server.truncations[0]
    item_ms = played[truncate["item_id"]]
    assert 1000 < truncate["audio_end_ms"] < len(reply) / 24
    # Within one 20 ms block (plus the 10 ms the output resampler may still hold) of what was written.
    assert abs(truncate["audio_end_ms"] - item_ms) <= 30, (truncate, played)
    assert not silent_after.any(), "playback went on after the interruption"
    assert [e for e in log.events("interrupted")]
