"""The bundled wake-word verifier: loading, file errors, settings, and what it changes on real audio.

Real openWakeWord and the committed espeak-ng fixtures (tests/fixtures/wake/), mixed with seeded noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.audio.formats import WAKE_RATE
from appliance.settings import Settings
from appliance.triggers.verifier import EmbeddingVerifier, VerifierError, VerifierRule, bundled_verifier
from appliance.triggers.wake_scan import read_wav_16k
from appliance.triggers.wakeword import FRAME_SAMPLES, WakeWordDetector

FIXTURES = Path(__file__).parent / "fixtures" / "wake"
SPEECH_RMS = 0.05


def noisy(path: Path, snr_db: float, seed: int, kind: str = "white") -> np.ndarray:
    """A fixture clip with 1 s before and 1.5 s after, in seeded white or pink noise at ``snr_db``."""
    clip = read_wav_16k(path).astype(np.float64) / 32768
    speech = clip * SPEECH_RMS / np.sqrt(np.mean(clip**2))
    mix = np.concatenate((np.zeros(WAKE_RATE), speech, np.zeros(WAKE_RATE * 3 // 2)))
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(mix))
    if kind == "pink":
        spectrum = np.fft.rfft(noise)
        f = np.fft.rfftfreq(len(mix), 1 / WAKE_RATE)
        f[0] = f[1]
        noise = np.fft.irfft(spectrum / np.sqrt(f), len(mix))
    noise = (noise - noise.mean()) / noise.std()
    mix = mix + noise * SPEECH_RMS / 10 ** (snr_db / 20)
    return np.round(np.clip(mix, -1, 1) * 32767).astype(np.int16)


def wakes(det: WakeWordDetector, audio: np.ndarray) -> int:
    np.random.seed(0)
    det.reset()
    return sum(len(det.process(audio[i : i + FRAME_SAMPLES])) for i in range(0, len(audio), FRAME_SAMPLES))


@pytest.fixture(scope="module")
def verified() -> WakeWordDetector:
    return WakeWordDetector(["hey_jarvis"], seed=0)


@pytest.fixture(scope="module")
def stock() -> WakeWordDetector:
    return WakeWordDetector(["hey_jarvis"], seed=0, verify=False)


def test_bundled_verifier_is_used_by_default_and_can_be_turned_off(
    verified: WakeWordDetector, stock: WakeWordDetector
) -> None:
    assert bundled_verifier("hey_jarvis") is not None
    assert verified.verified == ("hey_jarvis",)
    assert stock.verified == ()
    # Models without a shipped verifier run as before.
    assert WakeWordDetector(["alexa"], seed=0).verified == ()
    assert Settings(_env_file=None, wake={"verifier": "false"}).wake.verifier is False  # type: ignore[call-arg]


def test_bundled_verifier_says_how_it_was_made() -> None:
    path = bundled_verifier("hey_jarvis")
    assert path is not None
    meta = EmbeddingVerifier.load(path).meta
    assert meta["trained_by"] == "scripts/train_wake_verifier.py"
    assert meta["held_out_voices"] > 0


def test_missing_or_broken_verifier_file_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a numpy file")
    with pytest.raises(VerifierError, match="garbage.npz"):
        EmbeddingVerifier.load(garbage)
    partial = tmp_path / "partial.npz"
    np.savez(partial, mean=np.zeros(1536), std=np.ones(1536))
    with pytest.raises(VerifierError, match=r"partial.npz lacks w1, b1, w2, b2"):
        EmbeddingVerifier.load(partial)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, mean=np.zeros(10), std=np.ones(10), w1=np.zeros((10, 4)), b1=np.zeros(4),
             w2=np.zeros((4, 1)), b2=np.zeros(1))
    with pytest.raises(VerifierError, match="wrong.npz.*shape"):
        EmbeddingVerifier.load(wrong)
    with pytest.raises(VerifierError, match="absent.npz"):
        EmbeddingVerifier.load(tmp_path / "absent.npz")


def test_folded_standardization_matches_the_plain_network() -> None:
    rng = np.random.default_rng(3)
    params = {"mean": rng.normal(size=1536), "std": rng.uniform(0.5, 2, 1536), "w1": rng.normal(size=(1536, 8)) / 40,
              "b1": rng.normal(size=8), "w2": rng.normal(size=(8, 1)), "b2": rng.normal(size=1)}
    x = rng.normal(size=(5, 16, 96))
    z = (x.reshape(5, -1) - params["mean"]) / params["std"]
    expected = 1 / (1 + np.exp(-(np.maximum(z @ params["w1"] + params["b1"], 0) @ params["w2"] + params["b2"])))
    got = EmbeddingVerifier(params).score_batch(x)
    np.testing.assert_allclose(got, expected[:, 0], rtol=1e-4, atol=1e-5)


class ScriptedVerifier:
    """Stands in for the verifier with a fixed score per frame."""

    def __init__(self, scores: list[float], rule: VerifierRule | None = None) -> None:
        self.scores = iter(scores)
        self.rule = rule or VerifierRule()

    def score(self, window: np.ndarray) -> float:
        assert window.shape == (16, 96)
        return next(self.scores)


def test_a_verified_model_must_hold_its_decision_for_three_frames() -> None:
    det = WakeWordDetector(["hey_jarvis"], seed=0)
    # On silence the stock score is ~0: only the verifier can wake, at 0.7 or more.
    scores = [0.0, 0.9, 0.9, 0.0, 0.95, 0.69, 0.9, 0.8, 0.75, 0.9, 0.2]
    det._verifiers["hey_jarvis"] = ScriptedVerifier(scores)  # type: ignore[assignment]
    found = [len(det.process(np.zeros(FRAME_SAMPLES, np.int16))) for _ in scores]
    assert found == [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]  # two frames in a row never wake; the third does
    assert det.verifier_scores == {"hey_jarvis": 0.2}


def test_the_rule_comes_with_the_verifier_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    params: dict[str, Any] = {"mean": np.zeros(1536), "std": np.ones(1536), "w1": rng.normal(size=(1536, 4)),
                              "b1": np.zeros(4), "w2": np.ones((4, 1)), "b2": np.zeros(1)}
    path = tmp_path / "ruled.npz"
    np.savez(path, **params, meta=np.array('{"rule": {"alone": 0.4, "veto": 1.01, "confirm": 2}}'))
    assert EmbeddingVerifier.load(path).rule == VerifierRule(alone=0.4, veto=1.01, floor=0.0, confirm=2)
    np.savez(path, **params)
    assert EmbeddingVerifier.load(path).rule == VerifierRule()  # files without one keep the first rule
    for bad in ('{"rule": {"alone": 0}}', '{"rule": {"confirm": 0}}', '{"rule": {"loud": 1}}', '{"rule": 3}'):
        np.savez(path, **params, meta=np.array(bad))
        with pytest.raises(VerifierError, match="ruled.npz"):
            EmbeddingVerifier.load(path)


def test_a_rule_that_vetoes_leaves_the_decision_to_the_verifier() -> None:
    det = WakeWordDetector(["hey_jarvis"], seed=0)
    # Silence: stock ~0, so a verifier at 0.45 wakes only by a rule whose "alone" is below it.
    rule = VerifierRule(alone=0.4, veto=1.01, confirm=2)
    det._verifiers["hey_jarvis"] = ScriptedVerifier([0.45, 0.3, 0.45, 0.45, 0.45], rule)  # type: ignore[assignment]
    found = [len(det.process(np.zeros(FRAME_SAMPLES, np.int16))) for _ in range(5)]
    assert found == [0, 0, 0, 1, 0]
    det.reset()
    det._thresholds["hey_jarvis"] = 0.9  # a stricter threshold asks more of the verifier too
    det._verifiers["hey_jarvis"] = ScriptedVerifier([0.8] * 4, rule)  # type: ignore[assignment]
    assert [len(det.process(np.zeros(FRAME_SAMPLES, np.int16))) for _ in range(4)] == [0, 0, 0, 0]


@pytest.mark.parametrize("seed", range(3))
def test_verifier_hears_the_wake_word_in_noise_where_the_stock_model_does_not(
    verified: WakeWordDetector, stock: WakeWordDetector, seed: int
) -> None:
    audio = noisy(FIXTURES / "pos" / "en-us_160_comma.wav", 10, seed)
    assert wakes(stock, audio) == 0  # the stock model's score collapses in 10 dB white noise
    assert wakes(verified, audio) == 1


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_verifier_does_not_wake_on_other_speech_in_noise(verified: WakeWordDetector, kind: str) -> None:
    negatives = sorted((FIXTURES / "neg").glob("*.wav"))
    assert len(negatives) >= 10
    woke = [p.stem for p in negatives for snr in (10, 20) if wakes(verified, noisy(p, snr, 0, kind))]
    assert woke == []


def test_reset_forgets_frames_already_above() -> None:
    det = WakeWordDetector(["hey_jarvis"], seed=0)
    det._verifiers["hey_jarvis"] = ScriptedVerifier([0.9, 0.9, 0.9, 0.9])  # type: ignore[assignment]
    silence = np.zeros(FRAME_SAMPLES, np.int16)
    assert det.process(silence) == [] and det.process(silence) == []
    det.reset()
    assert det.verifier_scores == {"hey_jarvis": 0.0}
    assert det.process(silence) == []  # the count starts again: a third frame after a reset is the first
    assert len(det.process(silence)) == 0
