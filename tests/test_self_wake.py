"""Its own voice never wakes or interrupts it; a person's wake word over the answer still does.

The FIFO card feeds what the speaker played back into the microphone (a loud echo, as with a speaker
right next to the mic). The answer says the wake word (tests/fixtures/reply_says_wake_word_24k.wav,
made by scripts/make_fixtures.sh: "I'm Jarvis, ... just say, hey jarvis, and I will listen.").
Real PortAudio/ALSA, real openWakeWord, real SDK, fake server. Without the played-audio filter
(appliance/triggers/self_wake.py) both modes cut their own answer off at "hey jarvis".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from appliance.triggers.wake_scan import scan_file
from appliance.triggers.wakeword import WakeWordDetector
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import EventLog, make_settings, running, start_and_ask, wait_until

pytestmark = pytest.mark.e2e

ECHO_GAIN = 0.8
VAD_THRESHOLD = 600.0  # the fake server's energy VAD, as in test_echo_modes
SAYS_WAKE_WORD = FIXTURES / "reply_says_wake_word_24k.wav"


def detector() -> WakeWordDetector:
    return WakeWordDetector(["hey_jarvis"], 0.5, refractory_s=2.0, seed=0)


def settings_for(url: str, mode: str) -> object:
    return make_settings(
        realtime={"url": url},
        audio={"echo": mode},
        button={"pin": 17, "bounce_s": 0},
        earcons={"wake": False, "done": False, "error": False},
        session={"idle_timeout_s": 30},
    )


def barge_ins(log: EventLog) -> list[str]:
    return [f"{w['message']} (score {w['score']}, verifier {w.get('verifier_score')})"
            for w in log.events("wake") if w.get("barge_in")]


def test_the_fixture_says_the_wake_word() -> None:
    assert scan_file(SAYS_WAKE_WORD, detector()).woke("hey_jarvis")


@dataclass
class PlayedAnswer:
    log: EventLog
    server: FakeRealtimeServer
    played_ms: float
    reply_ms: float


async def play_answer_over_echo(card: FifoSoundCard, mock_pins: object, reply_wav: Path,
                                settings: Callable[[str], object], wake: WakeWordDetector) -> PlayedAnswer:
    """Ask by the button; the fake server answers with `reply_wav`, which the card plays back into the
    microphone (a speaker next to the mic) until the answer has ended."""
    reply = read_wav(reply_wav, 24000)
    card.set_echo(ECHO_GAIN, delay_ms=30)
    async with FakeRealtimeServer(reply_audio=reply.tobytes(), tool_name=None, vad_threshold=VAD_THRESHOLD,
                                  reply_chunk_interval_s=None) as server:
        app = Appliance(settings(server.url), "sk-test", wake)  # type: ignore[arg-type]
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await start_and_ask(app, log, card, button, read_wav(FIXTURES / "what_time_only.wav", card.rate))
            await wait_until(lambda: log.states()[-1] == "listening" and not app.player.busy, 20,  # type: ignore[union-attr]
                             "the answer to end", log)
            await asyncio.sleep(0.5)
            assert app.player is not None
            played_ms = sum(app.player.stats.item_played_ms.values())
    assert app.telemetry.registry.get_sample_value(
        "appliance_wakes_ignored_total", {"reason": "played_audio"}) == len(log.events("wake_ignored"))
    return PlayedAnswer(log, server, played_ms, 1000 * reply.size / 24000)


def assert_played_to_the_end_ignoring_itself(answer: PlayedAnswer) -> None:
    log, server = answer.log, answer.server
    assert barge_ins(log) == [], barge_ins(log)
    assert not server.cancels and not server.truncations
    assert answer.played_ms >= answer.reply_ms - 50, (answer.played_ms, answer.reply_ms)
    # The wake word heard the answer's wake word through the room (so the test can fail), and ignored it.
    assert log.events("wake_ignored"), "the echo never woke the wake word: the test proves nothing"
    assert {e["reason"] for e in log.events("wake_ignored")} == {"played_audio"}


@pytest.mark.parametrize("mode", ["gate", "aec"])
async def test_an_answer_that_says_the_wake_word_plays_to_the_end(
    card: FifoSoundCard, mock_pins: object, mode: str
) -> None:
    answer = await play_answer_over_echo(card, mock_pins, SAYS_WAKE_WORD, lambda url: settings_for(url, mode),
                                         detector())
    assert_played_to_the_end_ignoring_itself(answer)


@pytest.mark.parametrize("mode", ["gate", "aec"])
async def test_a_person_saying_the_wake_word_over_the_answer_interrupts_it(
    card: FifoSoundCard, mock_pins: object, mode: str
) -> None:
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", 24000), 5)  # about 9 s, no wake word in it
    card.set_echo(ECHO_GAIN, delay_ms=30)
    async with FakeRealtimeServer(reply_audio=reply.tobytes(), tool_name=None, vad_threshold=VAD_THRESHOLD,
                                  reply_chunk_interval_s=None) as server:
        app = Appliance(settings_for(server.url, mode), "sk-test", detector())  # type: ignore[arg-type]
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await start_and_ask(app, log, card, button, read_wav(FIXTURES / "what_time_only.wav", card.rate))
            # From now on only the wake word can interrupt (with AEC the server's VAD would also hear the
            # person and interrupt first, which is barge-in too, but not the path under test here).
            server.vad_threshold = float("inf")
            # Past the echo canceller's warm-up (about 2 s of the agent's speech).
            await asyncio.sleep(3.0)
            assert log.states()[-1] == "speaking" and not log.events("interrupted")
            card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
            await wait_until(lambda: bool(barge_ins(log)), 15, "barge-in", log)
            assert app.player is not None
            played_ms = sum(app.player.stats.item_played_ms.values())
    assert log.events("wake_ignored") == []
    assert server.cancels or server.truncations
    assert played_ms < 1000 * reply.size / 24000 - 1000
