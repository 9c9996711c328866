"""Streaming, stateful resampling (libsoxr) so block edges carry no clicks.

libsoxr dithers int16 output with a random seed per stream, so the same audio came out different
by a few LSB each time: digital silence became ±1 noise, whose log-mel features the wake word's
verifier scored anywhere from 0.35 to 0.96 on the same timer ring. Resampling in float32 and
rounding here makes the output a function of the input alone."""

from __future__ import annotations

import numpy as np
import soxr

from .formats import to_int16


class StreamResampler:
    """Mono int16 in, mono int16 out; keeps filter state between blocks."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._quality = quality
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.in_rate == self.out_rate:
            return None
        return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=self._quality)

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.int16)
        if self._stream is None:
            return block
        return to_int16(self._stream.resample_chunk(block.astype(np.float32)))

    def flush(self) -> np.ndarray:
        """Drain what the filter still holds (end of a stream of audio), then start afresh."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream = self._new_stream()
        return to_int16(tail)

    def reset(self) -> None:
        """Forget everything held (e.g. after an interruption)."""
        self._stream = self._new_stream()
