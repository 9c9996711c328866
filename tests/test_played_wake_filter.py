"""The played-audio wake filter on its own: what the speaker played explains a wake word it said, and
nothing else; at idle the tap keeps nothing, so the twin detector never runs."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.triggers.self_wake import PlayedAudioTap, PlayedWakeFilter
from appliance.triggers.wakeword import FRAME_SAMPLES, WakeWordDetector
from tests.audio_compare import FIXTURES, read_wav

RATE = 48000
BLOCK = RATE // 50  # the player's 20 ms callbacks


@pytest.fixture(scope="module")
def twin() -> WakeWordDetector:
    return WakeWordDetector(["hey_jarvis"], 0.5, seed=0)


def play(filter_: PlayedWakeFilter, samples: np.ndarray, start: float = 100.0) -> None:
    """Hand `samples` to a fresh tap as the player's callback would, 20 ms at a time, then score them."""
    tap = filter_.listen_to(RATE)
    for i in range(0, samples.size, BLOCK):
        block = samples[i : i + BLOCK]
        tap.write(block, bool(np.any(block)), start + i / RATE)
    filter_.update()


def test_a_played_wake_word_explains_a_detection_just_after_it(twin: WakeWordDetector) -> None:
    twin.reset()
    filter_ = PlayedWakeFilter(twin, FRAME_SAMPLES)
    reply = read_wav(FIXTURES / "reply_says_wake_word_24k.wav", RATE)
    play(filter_, np.concatenate([reply, np.zeros(RATE, np.int16)]))
    # "... just say, hey jarvis, ..." ends about 5.4 s in; the echo is heard a little later.
    assert filter_.explains(100.0 + 5.6)
    assert not filter_.explains(100.0 + 3.5)  # "your kitchen helper. Whenever you need me"
    assert not filter_.explains(100.0 + 9.0)  # after the answer


def test_an_ordinary_answer_explains_nothing(twin: WakeWordDetector) -> None:
    twin.reset()
    filter_ = PlayedWakeFilter(twin, FRAME_SAMPLES)
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", RATE), 5)
    play(filter_, reply)
    assert filter_.played_s > 8
    assert not any(filter_.explains(100.0 + t) for t in np.arange(0.0, 10.0, 0.1))


def test_the_tap_keeps_a_short_tail_after_playback_and_nothing_at_idle() -> None:
    tap = PlayedAudioTap(RATE, tail_s=1.0)
    silence, sound = np.zeros(BLOCK, np.int16), np.full(BLOCK, 1000, np.int16)
    tap.write(silence, False, 0.0)  # idle since start
    assert tap.take() == []
    tap.write(sound, True, 10.0)
    for i in range(1, 100):  # 2 s of silence after it
        tap.write(silence, False, 10.0 + i * 0.02)
    kept = tap.take()
    assert kept[0][0] == 10.0 and 0.98 <= kept[-1][0] - 10.0 <= 1.0
    tap.write(silence, False, 13.0)
    assert tap.take() == []
