"""Comparing recorded audio with what was expected: alignment-free normalised correlation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.audio import wavfile

FIXTURES = Path(__file__).parent / "fixtures"


def read_wav(path: Path, rate: int | None = None) -> np.ndarray:
    """The WAV's samples (mono int16), resampled to `rate` when given."""
    return wavfile.read_wav(path, rate)[0]


def best_match(haystack: np.ndarray, needle: np.ndarray) -> tuple[float, int]:
    """Peak normalised cross-correlation of `needle` inside `haystack`, and its offset (samples)."""
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    if h.size < n.size or not n.any():
        return 0.0, -1
    size = 1 << int(np.ceil(np.log2(h.size + n.size)))
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)[: h.size - n.size + 1]
    energy = np.convolve(h * h, np.ones(n.size), mode="valid")
    norm = np.sqrt(np.maximum(energy, 1e-9) * np.sum(n * n))
    scores = corr / norm
    idx = int(np.argmax(scores))
    return float(scores[idx]), idx


def trim_silence(x: np.ndarray, threshold: int = 64) -> np.ndarray:
    """Drop leading and trailing near-silence, so a needle only holds what must be found."""
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > threshold)
    return x[loud[0] : loud[-1] + 1] if loud.size else x
