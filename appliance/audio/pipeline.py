"""The microphone's consumer: one worker thread turns device-rate blocks into
16 kHz audio for the wake word and 24 kHz pcm16 for the model.

The 24 kHz side is handed to the event loop, which keeps a short look-back ring (so the words
right after the wake word are not lost) and forwards blocks to whatever conversation is listening.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from .capture import MicStream
from .resample import StreamResampler

log = logging.getLogger("appliance.audio.pipeline")

WAKE_RATE = 16000
MODEL_RATE = 24000


class WakeDetection(Protocol):
    model: str
    score: float


class WakeDetector(Protocol):
    def process(self, samples: np.ndarray) -> list: ...  # list[WakeDetection]


class AudioSink:
    """A bounded queue of (capture time, 24 kHz pcm16) blocks for one conversation; overflow drops
    and counts. The capture time lets the echo gate judge a block by when it was heard, not sent."""

    def __init__(self, max_blocks: int) -> None:
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=max_blocks)
        self.dropped = 0

    def put(self, block: bytes, captured_at: float | None = None) -> None:
        try:
            self.queue.put_nowait((time.monotonic() if captured_at is None else captured_at, block))
        except asyncio.QueueFull:
            self.dropped += 1


class MicPipeline:
    def __init__(
        self,
        mic: MicStream,
        loop: asyncio.AbstractEventLoop,
        detector: WakeDetector | None,
        on_wake: Callable[[WakeDetection], None],
        on_stalled: Callable[[str], None],
        lookback_ms: int = 300,
        stall_after_s: float = 2.0,
    ) -> None:
        self.mic = mic
        self._loop = loop
        self._detector = detector
        self._on_wake = on_wake
        self._on_stalled = on_stalled
        self._stall_after_s = stall_after_s
        self._to_wake = StreamResampler(mic.rate, WAKE_RATE)
        self._to_model = StreamResampler(mic.rate, MODEL_RATE)
        block_ms = max(1, 1000 * mic.block_frames // mic.rate)
        self._ring: deque[tuple[float, bytes]] = deque(maxlen=max(1, lookback_ms // block_ms))
        self._lookback = lookback_ms > 0
        self._sink: AudioSink | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.wake_enabled = True
        self.processed_blocks = 0
        self.last_tick = time.monotonic()
        self.wake_cpu_s = 0.0

    # -- event-loop side ------------------------------------------------------------------------
    def open_sink(self, max_seconds: float = 30.0) -> AudioSink:
        """Start collecting model audio for a conversation, beginning with the look-back ring."""
        block_ms = max(1, 1000 * self.mic.block_frames // self.mic.rate)
        sink = AudioSink(max_blocks=int(max_seconds * 1000 / block_ms))
        if self._lookback:
            for captured_at, block in self._ring:
                sink.put(block, captured_at)
        self._sink = sink
        return sink

    def close_sink(self) -> None:
        self._sink = None

    def _deliver(self, block: bytes, captured_at: float) -> None:
        self._ring.append((captured_at, block))
        if self._sink is not None:
            self._sink.put(block, captured_at)

    # -- worker thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mic-pipeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _run(self) -> None:
        stalled_reported = False
        while not self._stop.is_set():
            item = self.mic.read(timeout=0.2)
            self.last_tick = time.monotonic()
            if item is None:
                silent_for = time.monotonic() - self.mic.last_block_at
                if not stalled_reported and (silent_for > self._stall_after_s or not self.mic.active):
                    stalled_reported = True
                    reason = "input stream stopped" if not self.mic.active else f"no audio for {silent_for:.1f} s"
                    self._loop.call_soon_threadsafe(self._on_stalled, reason)
                continue
            stalled_reported = False
            captured_at, block = item
            self.process_block(block, captured_at)

    def process_block(self, block: np.ndarray, captured_at: float | None = None) -> None:
        captured_at = time.monotonic() if captured_at is None else captured_at
        self.processed_blocks += 1
        if self._detector is not None:
            started = time.process_time()
            samples16 = self._to_wake.process(block)
            detections = self._detector.process(samples16) if samples16.size else []
            self.wake_cpu_s += time.process_time() - started
            if self.wake_enabled:
                for detection in detections:
                    self._loop.call_soon_threadsafe(self._on_wake, detection)
        samples24 = self._to_model.process(block)
        if samples24.size:
            self._loop.call_soon_threadsafe(self._deliver, samples24.tobytes(), captured_at)
