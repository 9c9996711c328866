"""The committed speech fixtures have the shape the tests rely on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.audio_files import (
    FIXTURES,
    HEY_JARVIS_WHAT_TIME,
    NEGATIVE,
    REPLY_24K,
    WHAT_TIME_ONLY,
    read_wav,
    resample_int16,
)


def _speech_bounds(samples: np.ndarray, rate: int, threshold: int = 300) -> tuple[float, float]:
    """(first, last) time in seconds of a 10 ms frame with RMS above ``threshold``."""
    frame = rate // 100
    frames = samples[: len(samples) // frame * frame].astype(np.float64).reshape(-1, frame)
    loud = np.nonzero(np.sqrt(np.mean(frames * frames, axis=1)) > threshold)[0]
    return loud[0] / 100, (loud[-1] + 1) / 100


@pytest.mark.parametrize(
    ("path", "rate"),
    [(HEY_JARVIS_WHAT_TIME, 48_000), (WHAT_TIME_ONLY, 48_000), (NEGATIVE, 48_000), (REPLY_24K, 24_000)],
)
def test_fixture_format(path: Path, rate: int) -> None:
    samples, file_rate = read_wav(path)
    assert file_rate == rate
    assert samples.dtype == np.int16
    assert 1.0 < len(samples) / rate < 6.0
    assert np.abs(samples.astype(np.int32)).max() > 5000  # real speech, not silence


def test_wake_phrase_has_lead_in_and_trailing_silence() -> None:
    samples, rate = read_wav(HEY_JARVIS_WHAT_TIME)
    first, last = _speech_bounds(samples, rate)
    duration = len(samples) / rate
    assert 0.45 <= first <= 0.7
    assert duration - last >= 1.5


def test_fixture_dir_holds_only_committed_wavs() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.wav")) == [
        "hey_jarvis_what_time.wav",
        "negative.wav",
        "reply_24k.wav",
        "reply_says_wake_word_24k.wav",  # scripts/make_fixtures.sh, for tests/test_self_wake.py
        "what_time_only.wav",
    ]


def _best_hey_jarvis_score(samples: np.ndarray, rate: int) -> float:
    pytest.importorskip("pyopen_wakeword")
    from pyopen_wakeword.const import Model
    from pyopen_wakeword.openwakeword import OpenWakeWord, OpenWakeWordFeatures

    audio = resample_int16(samples, rate, 16_000).astype("<i2").tobytes()
    model = OpenWakeWord.from_builtin(Model.HEY_JARVIS)
    features = OpenWakeWordFeatures.from_builtin()
    best = 0.0
    for chunk in features.process_streaming(audio):
        for prob in model.process_streaming(chunk):
            best = max(best, float(prob))
    return best


def test_hey_jarvis_model_accepts_the_wake_phrase_and_rejects_the_rest() -> None:
    assert _best_hey_jarvis_score(*read_wav(HEY_JARVIS_WHAT_TIME)) > 0.9
    assert _best_hey_jarvis_score(*read_wav(NEGATIVE)) < 0.1
    assert _best_hey_jarvis_score(*read_wav(WHAT_TIME_ONLY)) < 0.1
