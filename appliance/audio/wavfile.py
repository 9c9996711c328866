"""Reading WAV files (fixtures, samples, earcons, accuracy clips) as mono int16."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]


def read_wav(path: str | Path, rate: int | None = None) -> tuple[Int16Array, int]:
    """Any PCM WAV (8/16/24/32-bit, any channel count) as mono int16, channels averaged;
    resampled with soxr to `rate` when given. Returns (samples, sample rate)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            src_rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise ValueError(f"cannot read WAV file {path}: {exc}") from exc
    if width == 2 and channels == 1 and rate in (None, src_rate):
        return np.frombuffer(raw, "<i2").astype(np.int16), src_rate
    if width == 1:
        audio = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        audio = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        audio = ints.astype(np.float32) / 8388608.0
    elif width == 4:
        audio = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"unsupported sample width {width} bytes in {path}")
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1)
    out_rate = src_rate
    if rate is not None and rate != src_rate:
        import soxr

        audio = soxr.resample(audio, src_rate, rate, quality="HQ")
        out_rate = rate
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16), out_rate
