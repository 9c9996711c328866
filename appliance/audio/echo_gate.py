"""Half-duplex echo gate: mute the microphone while the speaker plays (plus a tail).

``APPLIANCE_AUDIO__ECHO=gate``: the cheapest way to keep the agent from hearing
itself.  The user cannot barge in while the agent talks (their voice is muted
too), but nothing is needed beyond timestamps.

Timestamps are seconds on one monotonic clock (``time.monotonic()`` or
PortAudio's stream time, e.g. ``time.outputBufferDacTime`` /
``time.inputBufferAdcTime`` in sounddevice callbacks).  They are parameters so
tests can drive the gate with a fake clock.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
import numpy.typing as npt


class EchoGate:
    """Replace mic samples by zeros while playback is audible and for ``tail_ms`` after it.

    Thread-safe: :meth:`note_playback` is meant for the playback callback thread and
    :meth:`apply` for the capture thread.
    """

    def __init__(self, sample_rate: int = 24000, tail_ms: float = 300.0, max_intervals: int = 64) -> None:
        if sample_rate <= 0 or tail_ms < 0:
            raise ValueError("sample_rate must be positive and tail_ms non-negative")
        self.sample_rate = sample_rate
        self.tail_s = tail_ms / 1000.0
        self._lock = threading.Lock()
        # merged, time-ordered playback intervals (start, end); old ones are pruned
        self._intervals: deque[tuple[float, float]] = deque(maxlen=max_intervals)

    def note_playback(self, now: float, duration_s: float) -> None:
        """``duration_s`` seconds of audio were queued to the speaker at ``now``.

        Consecutive blocks queue up: a block written while earlier audio is still playing
        starts when that audio ends (pass the DAC time of the block's first sample as
        ``now`` for best accuracy).  Silent blocks need not be reported.
        """
        if duration_s <= 0:
            return
        with self._lock:
            if self._intervals and now <= self._intervals[-1][1] + 1e-9:
                start, end = self._intervals[-1]
                self._intervals[-1] = (start, max(end, now) + duration_s)
            else:
                self._intervals.append((now, now + duration_s))

    def note_playback_stopped(self, now: float) -> None:
        """Playback was cut short at ``now`` (e.g. the output queue was flushed on barge-in)."""
        with self._lock:
            if self._intervals:
                start, end = self._intervals[-1]
                if end > now:
                    self._intervals[-1] = (start, max(start, now))

    def reset(self) -> None:
        with self._lock:
            self._intervals.clear()

    def is_active(self, now: float) -> bool:
        """True if a mic sample captured at ``now`` would be muted."""
        with self._lock:
            return any(start <= now < end + self.tail_s for start, end in self._intervals)

    def muted_until(self) -> float | None:
        """End of the current mute window (last playback end + tail), or None if never played."""
        with self._lock:
            return self._intervals[-1][1] + self.tail_s if self._intervals else None

    def apply(self, block: npt.NDArray[np.int16], now: float) -> npt.NDArray[np.int16]:
        """Return ``block`` with the samples captured during playback (+ tail) zeroed.

        ``now`` is the capture time of the block's first sample; sample ``i`` is taken at
        ``now + i / sample_rate``.  The input array is not modified; it is returned as is
        when nothing needs muting.
        """
        n = block.shape[0]
        if n == 0:
            return block
        t_end = now + n / self.sample_rate
        with self._lock:
            while self._intervals and self._intervals[0][1] + self.tail_s <= now:
                if len(self._intervals) == 1:
                    break  # keep the last one for muted_until()
                self._intervals.popleft()
            windows = [
                (start, end + self.tail_s)
                for start, end in self._intervals
                if start < t_end and end + self.tail_s > now
            ]
        if not windows:
            return block
        out = block.copy()
        for w0, w1 in windows:
            i0 = max(0, int(np.ceil((w0 - now) * self.sample_rate - 1e-9)))
            i1 = min(n, int(np.ceil((w1 - now) * self.sample_rate - 1e-9)))
            if i1 > i0:
                out[i0:i1] = 0
        return out
