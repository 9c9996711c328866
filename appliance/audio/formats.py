"""The audio formats the appliance speaks, in one place: rates and ms ↔ samples helpers.

Everything between the devices and the model is mono pcm16. The devices run at their own rate;
these are the rates on the two fixed sides.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MODEL_RATE = 24_000
"""The Realtime API's audio rate, both ways (pcm16 mono)."""

WAKE_RATE = 16_000
"""openWakeWord's input rate."""

SAMPLE_BYTES = 2
"""pcm16: two bytes per sample."""

MODEL_AUDIO_FORMAT = {"type": "audio/pcm", "rate": MODEL_RATE}
"""The Realtime API's description of that format (session `audio.input/output.format`)."""


def samples_for_ms(ms: float, rate: int) -> int:
    """How many samples `ms` milliseconds are at `rate` (rounded down)."""
    return int(rate * ms // 1000)


def ms_for_samples(samples: int, rate: int) -> float:
    """How many milliseconds `samples` samples last at `rate`."""
    return 1000.0 * samples / rate


def bytes_for_ms(ms: float, rate: int = MODEL_RATE) -> int:
    """pcm16 bytes for `ms` milliseconds at `rate`."""
    return samples_for_ms(ms, rate) * SAMPLE_BYTES


_INT16_MIN32, _INT16_MAX32 = np.float32(-32768), np.float32(32767)


def to_int16(x: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Round and saturate a float signal at int16 scale to pcm16 samples."""
    a = np.asarray(x)
    if a.dtype == np.float32:  # the resampler's hot path, 50 blocks a second: in place, no np.clip
        r = np.rint(a)  # (np.clip's own overhead was half of the resampler's time per 20 ms block)
        np.minimum(r, _INT16_MAX32, out=r)
        np.maximum(r, _INT16_MIN32, out=r)
        return r.astype(np.int16)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return np.clip(np.rint(a), -32768, 32767).astype(np.int16)
