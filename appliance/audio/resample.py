"""Streaming, stateful resampling (libsoxr) so block edges carry no clicks."""

from __future__ import annotations

import numpy as np
import soxr


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
        return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="int16", quality=self._quality)

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.int16)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block)

    def flush(self) -> np.ndarray:
        """Drain what the filter still holds (end of a stream of audio), then start afresh."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._stream = self._new_stream()
        return tail

    def reset(self) -> None:
        """Forget everything held (e.g. after an interruption)."""
        self._stream = self._new_stream()
