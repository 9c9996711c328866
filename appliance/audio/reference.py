"""Playback reference ring buffer for the echo canceller.

The playback (PortAudio output) callback writes exactly the samples it hands to
the device, silence included; the capture path reads, for each mic block, a
reference block of the same length.  Both streams run on the same audio clock
(one full-duplex device, same sample rate, mono int16 at the AEC rate), so once
the reader has picked its starting point it advances sample by sample, giving
the echo canceller a *fixed* echo delay, which it needs to stay converged.

Alignment.  The first :meth:`ReferenceBuffer.read` after creation or
:meth:`~ReferenceBuffer.resync` ends its block ``delay`` samples behind the
write head (the newest sample written).  The echo canceller tolerates the echo
lagging the reference by up to its tail (200 ms by default) but not leading it,
so the reference must be no *older* than what the speaker emits while the mic
block is captured: choose ``delay`` a little *below* the real round trip (output
latency + input latency, e.g. ``sum(stream.latency)`` in sounddevice, times the
rate, minus a block) — 0 is safe whenever that round trip is below ~100 ms.

If the reader drifts more than ``max_drift`` samples from its nominal position
(e.g. the output stream was stopped and restarted, or a callback overran), it
resynchronises and counts it in :attr:`ReferenceBuffer.resyncs`; reset the echo
canceller's state in that case only if the echo path delay really changed.

Threading: one producer and one consumer; a lock guards the indices and the
copies (a few microseconds), which is acceptable inside PortAudio callbacks.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from .formats import MODEL_RATE

Int16Array = npt.NDArray[np.int16]


class ReferenceBuffer:
    """Bounded single-producer / single-consumer ring of int16 playback samples."""

    def __init__(
        self,
        capacity: int = MODEL_RATE * 2,
        *,
        delay: int = 0,
        max_drift: int | None = None,
    ) -> None:
        """``capacity``: samples kept (older ones are overwritten); ``delay``: see module doc;
        ``max_drift``: resync threshold in samples (default: a quarter of the capacity)."""
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        if not 0 <= delay < capacity:
            raise ValueError("delay must be in [0, capacity)")
        self.capacity = capacity
        self.delay = delay
        self.max_drift = max_drift if max_drift is not None else capacity // 4
        self._buf = np.zeros(capacity, dtype=np.int16)
        self._lock = threading.Lock()
        self._written = 0  # absolute index one past the newest sample
        self._read: int | None = None  # absolute index of the next sample to read
        self.resyncs = 0
        self.underrun_samples = 0  # samples read as silence because they were not written yet
        self.breaks = 0  # times the echo path moved against the reference (xruns, big drift)

    # -- producer --------------------------------------------------------------------------------

    def write(self, samples: npt.ArrayLike) -> None:
        """Append what the playback stream wrote to the device (call it for silence too)."""
        x = np.asarray(samples)
        if x.dtype != np.int16:
            x = np.clip(x, -32768, 32767).astype(np.int16)
        x = x.reshape(-1)
        n = x.shape[0]
        if n == 0:
            return
        if n > self.capacity:
            x = x[-self.capacity :]
        with self._lock:
            start = self._written + (n - x.shape[0])
            self._copy_in(start, x)
            self._written += n

    def _copy_in(self, start: int, x: Int16Array) -> None:
        pos = start % self.capacity
        first = min(x.shape[0], self.capacity - pos)
        self._buf[pos : pos + first] = x[:first]
        if first < x.shape[0]:
            self._buf[: x.shape[0] - first] = x[first:]

    # -- consumer --------------------------------------------------------------------------------

    def read(self, n: int) -> Int16Array:
        """Return the ``n`` reference samples matching the next ``n`` captured samples.

        Samples never written (before playback started, or not yet written) are zeros.
        """
        out = np.zeros(n, dtype=np.int16)
        if n <= 0:
            return out
        with self._lock:
            nominal = self._written - self.delay - n
            if self._read is None:
                self._read = nominal
            elif (drifted := abs(self._read - nominal) > self.max_drift) or (self._read + n > self._written > 0):
                # Drifted, or about to read samples not played yet (the player writes in bursts):
                # reading the future would hand the canceller silence for what the speaker emits.
                self.breaks += drifted
                self._read = nominal
                self.resyncs += 1
            r0 = self._read
            lo = max(r0, self._written - self.capacity, 0)
            hi = min(r0 + n, self._written)
            if hi > lo:
                pos = lo % self.capacity
                cnt = hi - lo
                first = min(cnt, self.capacity - pos)
                out[lo - r0 : lo - r0 + first] = self._buf[pos : pos + first]
                if first < cnt:
                    out[lo - r0 + first : hi - r0] = self._buf[: cnt - first]
            if r0 + n > self._written:
                self.underrun_samples += r0 + n - max(r0, self._written)
            self._read = r0 + n
        return out

    def mark_break(self) -> None:
        """The output device ran dry (an underflow): from here the echo lags the reference by the
        silence it played, and the echo canceller must re-learn (the consumer watches `breaks`)."""
        with self._lock:
            self.breaks += 1

    def resync(self) -> None:
        """Re-align the reader on its next read (after a stream restart)."""
        with self._lock:
            self._read = None

    def clear(self) -> None:
        """Forget everything written and re-align."""
        with self._lock:
            self._buf[:] = 0
            self._written = 0
            self._read = None

    @property
    def written(self) -> int:
        return self._written


class CaptureReferenceReader:
    """Reads the reference for each microphone block *in the capture callback*, as it is captured.

    Reading it later, on the worker thread that cancels the echo, would pair a block with whatever
    the speaker was playing when the worker got to it: behind a backlog of blocks (a slow wake-word
    frame, a busy CPU) the reference would be newer than the echo in the block, which the canceller
    cannot model (the echo may lag the reference, never lead it), so it stops cancelling for good.
    The sample counts are kept exact across rates (e.g. a 44.1 kHz mic, a 48 kHz speaker).
    """

    def __init__(self, buffer: ReferenceBuffer, reference_rate: int, mic_rate: int) -> None:
        self.buffer = buffer
        self._ratio = reference_rate / mic_rate
        self._captured = 0
        self._read = 0

    def read_for(self, frames: int) -> Int16Array:
        """The reference samples matching `frames` microphone samples captured just now."""
        self._captured += frames
        want = round(self._captured * self._ratio) - self._read
        self._read += want
        return self.buffer.read(want)
