"""Audio backends: PortAudio over ALSA (`sounddevice`) or PulseAudio/PipeWire directly (`pulse`).

One small interface, so capture, playback and the echo canceller's reference do not care which:
a backend lists devices, opens an input or output stream that calls back with blocks in PortAudio's
callback shape `(data, frames, time, status)`, and plays or records a short clip for `appliance check`.
Everything above (`MicStream`, `Player`, the pipeline) stays the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from ...settings import AudioSettings

Direction = Literal["input", "output"]
BackendName = Literal["sounddevice", "pulse"]

# Called with (int16 block frames x channels, frames, time info or None, status).
# Input: read the block. Output: fill it in place.
AudioCallback = Callable[[np.ndarray, int, Any, Any], None]


class AudioDeviceError(RuntimeError):
    """A device that cannot be found or opened; the message says which and why."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    key: str = ""  # the backend's own name for it (a PulseAudio source/sink name); "" for PortAudio


@dataclass(frozen=True)
class StreamStatus:
    """What a backend without PortAudio's flags reports to a callback."""

    input_overflow: bool = False
    output_underflow: bool = False


class Stream(Protocol):
    channels: int

    @property
    def latency(self) -> float:
        """The device side's buffering, in seconds."""

    @property
    def active(self) -> bool: ...

    def start(self) -> None: ...

    def abort(self) -> None:
        """Stop at once, dropping what is buffered (tests use it to make a device vanish)."""

    def close(self) -> None:
        """Stop at once and release the device; a vanished device is logged, not raised."""


class AudioBackend(Protocol):
    @property
    def name(self) -> BackendName: ...

    def list_devices(self) -> list[DeviceInfo]: ...

    def default_device(self, direction: Direction) -> int | None:
        """Index of the system default device for a direction, if there is one."""

    def supported_rates(self, dev: DeviceInfo, direction: Direction, channels: int) -> list[int]:
        """Rates the device takes, its native one first."""

    def open_input(
        self, dev: DeviceInfo, rate: int, channels: int, block_frames: int, callback: AudioCallback
    ) -> Stream: ...

    def open_output(
        self, dev: DeviceInfo, rate: int, channels: int, block_frames: int, callback: AudioCallback
    ) -> Stream: ...

    def rescan(self) -> None:
        """Forget cached devices (a USB device plugged back in). Only with no stream open."""

    def play(self, dev: DeviceInfo, samples: np.ndarray, rate: int) -> None:
        """Play mono int16 samples to the end (blocking)."""

    def record(self, dev: DeviceInfo, frames: int, rate: int, channels: int) -> np.ndarray:
        """Record int16 frames x channels (blocking)."""


_BACKENDS: dict[str, AudioBackend] = {}


def get_backend(name: str = "sounddevice", **options: Any) -> AudioBackend:
    """The named backend (one instance per process). `options`: `latency_ms` for `pulse`."""
    if name not in _BACKENDS:
        if name == "sounddevice":
            from .portaudio import PortAudioBackend

            _BACKENDS[name] = PortAudioBackend()
        elif name == "pulse":
            from .pulse import PulseBackend

            _BACKENDS[name] = PulseBackend(**options)
        else:
            raise ValueError(f"unknown audio backend {name!r}: sounddevice or pulse")
    return _BACKENDS[name]


def backend_for(audio: AudioSettings) -> AudioBackend:
    """The backend the settings choose (APPLIANCE_AUDIO__BACKEND)."""
    if audio.backend == "pulse":
        return get_backend("pulse", latency_ms=audio.pulse_latency_ms)
    return get_backend("sounddevice")
