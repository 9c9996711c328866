"""Speech fixtures for tests (made by ``scripts/make_fixtures.sh``) and small PCM helpers.

Mic-side fixtures are 48 kHz mono int16; ``reply_24k.wav`` is 24 kHz mono int16.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

FIXTURES: Path = Path(__file__).resolve().parent / "fixtures"

HEY_JARVIS_WHAT_TIME: Path = FIXTURES / "hey_jarvis_what_time.wav"
WHAT_TIME_ONLY: Path = FIXTURES / "what_time_only.wav"
NEGATIVE: Path = FIXTURES / "negative.wav"
REPLY_24K: Path = FIXTURES / "reply_24k.wav"

Pcm16 = npt.NDArray[np.int16]


def read_wav(path: str | Path) -> tuple[Pcm16, int]:
    """Read a mono 16-bit PCM WAV file; return (samples as int16, sample rate)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.int16), rate


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
