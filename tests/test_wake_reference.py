"""The appliance's own wake-word pipeline scores, and wakes, exactly as openWakeWord 0.6 does.

tests/fixtures/wake_reference.npz holds openWakeWord's own per-frame scores on every committed WAV
fixture, recorded once by scripts/wake_reference_scores.py with openWakeWord installed in a throwaway
venv; this test does not need it. Both sides see the same audio: 1 s of silence, the clip, 1 s of
silence, in 80 ms frames, from the start state (openWakeWord after 4 s of silence, which flushes its
start noise; the appliance's pipeline starts there).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from appliance.audio.wavfile import read_wav
from appliance.triggers.verifier import EmbeddingVerifier, bundled_verifier
from appliance.triggers.wake_models import BUNDLED_MODELS
from appliance.triggers.wakeword import DEFAULT_THRESHOLD, FRAME_SAMPLES, WakeGate, WakeWordDetector

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "wake_reference.npz"
RATE = 16_000
TOLERANCE = 1e-5  # per-frame score; LiteRT on the same models and shapes gives the same floats here


@cache
def reference() -> tuple[dict[str, object], dict[str, np.ndarray]]:
    with np.load(REFERENCE, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        clips = {key: data[key] for key in data.files if key != "meta"}
    return meta, clips


def fixture_keys() -> list[str]:
    paths = sorted(FIXTURES.glob("wake/*/*.wav")) + sorted(FIXTURES.glob("*.wav"))
    return [p.relative_to(FIXTURES).as_posix() for p in paths]


def padded(key: str, pad_s: int) -> np.ndarray:
    pad = np.zeros(pad_s * RATE, dtype=np.int16)
    return np.concatenate((pad, read_wav(FIXTURES / key, RATE)[0], pad))


@pytest.fixture(scope="module")
def verified() -> WakeWordDetector:
    """As the appliance runs: every bundled model, hey_jarvis with its verifier."""
    return WakeWordDetector(list(BUNDLED_MODELS))


@pytest.fixture(scope="module")
def stock() -> WakeWordDetector:
    return WakeWordDetector(list(BUNDLED_MODELS), verify=False)


def run(detector: WakeWordDetector, audio: np.ndarray) -> tuple[np.ndarray, list[tuple[str, int, bool]]]:
    """Per-frame scores (frames x models [+ verifier]) and the detections."""
    detector.reset()
    rows: list[list[float]] = []
    found: list[tuple[str, int, bool]] = []
    for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        found += [(d.model, d.at_sample, d.stock_fired) for d in detector.process(audio[start : start + FRAME_SAMPLES])]
        rows.append([detector.scores[m] for m in BUNDLED_MODELS] + list(detector.verifier_scores.values()))
    return np.asarray(rows), found


def expected_wakes(scores: np.ndarray, verifier: EmbeddingVerifier | None) -> list[tuple[str, int, bool]]:
    """The detections openWakeWord's scores would have made, by the detector's own wake rule."""
    column = {name: i for i, name in enumerate(BUNDLED_MODELS)}
    gates = {name: WakeGate(2 * RATE) for name in BUNDLED_MODELS}
    wakes: list[tuple[str, int, bool]] = []
    for frame, row in enumerate(scores):
        at = (frame + 1) * FRAME_SAMPLES
        for name in BUNDLED_MODELS:
            score = float(row[column[name]])
            confirm = 1
            if verifier is not None and name == "hey_jarvis":
                hit = verifier.rule.hit(score, float(row[len(BUNDLED_MODELS)]), DEFAULT_THRESHOLD)
                confirm = verifier.rule.confirm
            else:
                hit = score >= DEFAULT_THRESHOLD
            if gates[name].step(hit, at, confirm):
                wakes.append((name, at, score >= DEFAULT_THRESHOLD))
    return sorted(wakes, key=lambda w: (w[1], BUNDLED_MODELS.index(w[0])))


def test_reference_was_made_the_way_the_test_reads_it() -> None:
    meta, clips = reference()
    assert meta["frame_samples"] == FRAME_SAMPLES
    assert meta["columns"] == [*BUNDLED_MODELS, "hey_jarvis_verifier"]
    assert meta["versions"]["openwakeword"] == "0.6.0"  # type: ignore[index]
    assert sorted(clips) == sorted(fixture_keys()), "a fixture changed: rerun scripts/wake_reference_scores.py"


def test_reference_wakes_on_the_wake_word_and_not_on_the_rest() -> None:
    """The reference itself is what the fixtures promise, so matching it means something."""
    _, clips = reference()
    jarvis = BUNDLED_MODELS.index("hey_jarvis")
    assert all(clips[k][:, jarvis].max() > 0.5 for k in clips if k.startswith("wake/pos/"))
    assert all(clips[k][:, jarvis].max() < 0.5 for k in clips if k.startswith("wake/neg/"))


@pytest.mark.parametrize("key", fixture_keys())
def test_scores_and_wakes_match_openwakeword(key: str, verified: WakeWordDetector, stock: WakeWordDetector) -> None:
    meta, clips = reference()
    want = clips[key].astype(np.float64)
    audio = padded(key, int(meta["pad_s"]))  # type: ignore[call-overload]
    got, wakes = run(verified, audio)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= TOLERANCE, np.abs(got - want).max(axis=0)
    verifier = EmbeddingVerifier.load(bundled_verifier("hey_jarvis"))  # type: ignore[arg-type]
    assert wakes == expected_wakes(want, verifier)
    stock_scores, stock_wakes = run(stock, audio)
    assert np.abs(stock_scores - want[:, : len(BUNDLED_MODELS)]).max() <= TOLERANCE
    assert stock_wakes == expected_wakes(want, None)
