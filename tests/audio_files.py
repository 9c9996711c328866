"""Speech fixtures for tests (made by ``scripts/make_fixtures.sh``) and small PCM helpers.

Mic-side fixtures are 48 kHz mono int16; ``reply_24k.wav`` is 24 kHz mono int16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.audio import wavfile

FIXTURES: Path = Path(__file__).resolve().parent / "fixtures"

HEY_JARVIS_WHAT_TIME: Path = FIXTURES / "hey_jarvis_what_time.wav"
WHAT_TIME_ONLY: Path = FIXTURES / "what_time_only.wav"
NEGATIVE: Path = FIXTURES / "negative.wav"
REPLY_24K: Path = FIXTURES / "reply_24k.wav"

Pcm16 = npt.NDArray[np.int16]


def read_wav(path: str | Path) -> tuple[Pcm16, int]:
    """Read a WAV file as mono int16; return (samples, sample rate)."""
    return wavfile.read_wav(path)


def resample_int16(samples: Pcm16, rate_in: int, rate_out: int) -> Pcm16:
    """Resample int16 mono audio with soxr (high quality); identity if the rates match."""
    if rate_in == rate_out:
        return samples.copy()
    import soxr

    out = soxr.resample(samples.astype(np.float32) / 32768.0, rate_in, rate_out, quality="HQ")
    return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)


def pcm16_bytes(path: str | Path, rate: int) -> bytes:
    """The fixture at ``path`` as raw little-endian pcm16 bytes at ``rate`` Hz."""
    samples, file_rate = read_wav(path)
    return resample_int16(samples, file_rate, rate).astype("<i2").tobytes()


def silence(seconds: float, rate: int) -> bytes:
    """Raw pcm16 silence."""
    return bytes(2 * round(seconds * rate))


def _envelope(samples: npt.NDArray[np.floating[Any]], window: int) -> npt.NDArray[np.float64]:
    """RMS envelope over consecutive windows of ``window`` samples."""
    usable = len(samples) // window * window
    frames = samples[:usable].astype(np.float64).reshape(-1, window)
    return np.sqrt(np.mean(frames * frames, axis=1))


def locate(haystack: bytes, needle: bytes, rate: int, *, window_ms: int = 10) -> tuple[float, float]:
    """Find where the speech in ``needle`` occurs in ``haystack`` (both raw pcm16 at ``rate``).

    Compares RMS envelopes (``window_ms`` windows) by normalised cross-correlation, so it
    tolerates resampling, gain changes and slightly different synthesis of the same words.
    Returns ``(offset_seconds, score)``; a score above ~0.8 means a confident match
    (1.0 is a perfect one). Leading/trailing silence of ``needle`` is ignored.
    """
    window = max(1, rate * window_ms // 1000)
    hay = _envelope(np.frombuffer(haystack, dtype="<i2"), window)
    ndl = _envelope(np.frombuffer(needle, dtype="<i2"), window)
    loud = np.nonzero(ndl > 0.05 * ndl.max())[0] if ndl.size and ndl.max() > 0 else np.array([], int)
    if loud.size == 0 or len(hay) < loud[-1] - loud[0] + 1:
        return 0.0, 0.0
    first = int(loud[0])
    ndl = ndl[first : int(loud[-1]) + 1]
    ndl = ndl - ndl.mean()
    n = len(ndl)
    # Sliding mean/energy of the haystack for the normalisation.
    csum = np.concatenate(([0.0], np.cumsum(hay)))
    csum2 = np.concatenate(([0.0], np.cumsum(hay * hay)))
    sums = csum[n:] - csum[:-n]
    energy = (csum2[n:] - csum2[:-n]) - sums * sums / n
    corr = np.correlate(hay, ndl, mode="valid")
    denom = np.sqrt(np.maximum(energy, 0.0)) * np.linalg.norm(ndl)
    scores = np.divide(corr, denom, out=np.zeros_like(corr), where=denom > 1e-9)
    best = int(np.argmax(scores))
    return (best - first) * window / rate, float(scores[best])
