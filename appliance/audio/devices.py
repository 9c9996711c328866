"""Audio device lookup by name substring or index, and native-rate probing, on either backend."""

from __future__ import annotations

import logging
from typing import Literal

from .backends import AudioBackend, AudioDeviceError, DeviceInfo, Stream, get_backend

__all__ = [
    "AudioDeviceError", "DeviceInfo", "Direction", "find_device", "list_devices", "pick_rate", "rescan",
    "supported_rates", "close_stream", "stream_active",
]

Direction = Literal["input", "output"]


def _backend(backend: AudioBackend | None) -> AudioBackend:
    return backend if backend is not None else get_backend("sounddevice")


def list_devices(backend: AudioBackend | None = None) -> list[DeviceInfo]:
    return _backend(backend).list_devices()


def _channels(dev: DeviceInfo, direction: Direction) -> int:
    return dev.max_input_channels if direction == "input" else dev.max_output_channels


def find_device(spec: str | int | None, direction: Direction, backend: AudioBackend | None = None) -> DeviceInfo:
    """Resolve a device: None = the system default, int = index, str = case-insensitive substring of
    its name (or of the backend's own name for it, e.g. a PulseAudio source name)."""
    be = _backend(backend)
    usable = [d for d in be.list_devices() if _channels(d, direction) > 0]
    if spec is None:
        default = be.default_device(direction)
        for d in usable:
            if d.index == default:
                return d
        if not usable:
            raise AudioDeviceError(f"no {direction} device found")
        return usable[0]
    if isinstance(spec, int):
        for d in usable:
            if d.index == spec:
                return d
        raise AudioDeviceError(f"no {direction} device with index {spec}; run `appliance devices`")
    wanted = spec.lower()
    matches = [d for d in usable if wanted in d.name.lower() or wanted in d.key.lower()]
    if not matches:
        names = ", ".join(repr(d.name) for d in usable) or "none"
        raise AudioDeviceError(f"no {direction} device matching {spec!r}; {direction} devices: {names}")
    exact = [d for d in matches if wanted in (d.name.lower(), d.key.lower())]
    return (exact or matches)[0]


def supported_rates(
    dev: DeviceInfo, direction: Direction, channels: int = 1, backend: AudioBackend | None = None
) -> list[int]:
    return _backend(backend).supported_rates(dev, direction, channels)


def pick_rate(
    dev: DeviceInfo, direction: Direction, channels: int = 1, forced: int | None = None,
    backend: AudioBackend | None = None,
) -> int:
    """The device's native rate if it accepts it, else the first candidate it accepts."""
    if forced:
        return forced
    rates = supported_rates(dev, direction, channels, backend)
    if not rates:
        raise AudioDeviceError(f"{direction} device {dev.name!r} accepts none of the usual rates")
    return rates[0]


def rescan(backend: AudioBackend | None = None) -> None:
    """Make the backend list devices afresh (a USB device plugged back in). Only with no stream open.
    Any failure is an `AudioDeviceError` (retried like a missing device)."""
    _backend(backend).rescan()


def close_stream(stream: Stream | None, what: str) -> None:
    """Stop and close a stream; a vanished device may refuse, which is logged, not raised."""
    if stream is None:
        return
    try:
        stream.close()
    except Exception as exc:
        logging.getLogger("appliance.audio").warning("closing %s stream failed: %s", what, exc)


def stream_active(stream: Stream | None) -> bool:
    return stream is not None and bool(stream.active)
