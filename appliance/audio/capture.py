"""Microphone capture: an input stream at the device's own rate, on the configured audio backend.

The stream's callback (PortAudio's thread, or the pulse backend's reader thread) only copies the
chosen channel into a bounded queue; all processing happens on the consumer's thread. A full queue
drops the block and counts it.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .backends import AudioBackend, Stream, get_backend
from .devices import AudioDeviceError, DeviceInfo, close_stream, stream_active

log = logging.getLogger("appliance.audio.capture")


class CapturedBlock(NamedTuple):
    captured_at: float  # monotonic time the callback got it
    samples: np.ndarray  # the configured channel, int16, at the stream's rate
    reference: np.ndarray | None  # what the speaker was playing meanwhile (echo = "aec"), else None


@dataclass
class CaptureStats:
    blocks: int = 0
    dropped_blocks: int = 0
    overflows: int = 0


class MicStream:
    def __init__(
        self,
        device: DeviceInfo,
        rate: int,
        channel: int = 0,
        block_ms: int = 20,
        queue_blocks: int = 250,
        backend: AudioBackend | None = None,
    ) -> None:
        if channel >= device.max_input_channels:
            raise AudioDeviceError(
                f"input channel {channel} requested but {device.name!r} has "
                f"{device.max_input_channels} channel(s)"
            )
        self.device = device
        self.rate = rate
        self.channel = channel
        self.block_frames = max(1, rate * block_ms // 1000)
        # SimpleQueue: a put and a get cost a tenth of queue.Queue's (no condition variables), 50 times
        # a second; the callback is its one producer, so checking its size before the put bounds it.
        self.blocks: queue.SimpleQueue[CapturedBlock] = queue.SimpleQueue()
        self.max_blocks = queue_blocks
        # Set by the echo canceller's owner: reads what the speaker played during `frames` samples.
        self.read_reference: Callable[[int], np.ndarray] | None = None
        self.stats = CaptureStats()
        self.last_block_at = 0.0
        self._backend = backend  # resolved when the stream opens: building one touches no device
        self._stream: Stream | None = None

    def _callback(self, indata: np.ndarray, frames: int, _time: object, status: Any) -> None:
        if status.input_overflow:
            self.stats.overflows += 1
        now = time.monotonic()
        self.last_block_at = now
        read_reference = self.read_reference
        # Read here, not on the consumer's thread: see reference.CaptureReferenceReader. A dropped
        # block drops its reference too, so the two stay paired.
        reference = read_reference(frames) if read_reference is not None else None
        if self.blocks.qsize() >= self.max_blocks:
            self.stats.dropped_blocks += 1
            return
        self.blocks.put_nowait(CapturedBlock(now, indata[:, self.channel].copy(), reference))
        self.stats.blocks += 1

    @property
    def backend(self) -> AudioBackend:
        if self._backend is None:
            self._backend = get_backend("sounddevice")
        return self._backend

    def start(self) -> None:
        try:
            self._stream = self.backend.open_input(
                self.device, self.rate, self.channel + 1, self.block_frames, self._callback
            )
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise AudioDeviceError(f"cannot open input device {self.device.name!r} at {self.rate} Hz: {exc}") from exc
        self.last_block_at = time.monotonic()
        log.info(
            "capture started",
            extra={"event": "audio_open", "direction": "input", "device": self.device.name, "rate": self.rate,
                   "backend": self.backend.name},
        )

    @property
    def active(self) -> bool:
        return stream_active(self._stream)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        close_stream(stream, "input")

    def read(self, timeout: float) -> CapturedBlock | None:
        try:
            return self.blocks.get(timeout=timeout)
        except queue.Empty:
            return None
