"""Audio device lookup by name substring or index, and native-rate probing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import sounddevice as sd

Direction = Literal["input", "output"]

# Tried after the device's own default rate; many USB and HAT devices only do 44.1/48 kHz.
CANDIDATE_RATES = (48000, 44100, 32000, 24000, 16000, 96000)


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

    @classmethod
    def from_query(cls, raw: dict[str, Any]) -> DeviceInfo:
        hostapis = sd.query_hostapis()
        return cls(
            index=int(raw["index"]),
            name=str(raw["name"]),
            hostapi=str(hostapis[int(raw["hostapi"])]["name"]),  # type: ignore[index]
            max_input_channels=int(raw["max_input_channels"]),
            max_output_channels=int(raw["max_output_channels"]),
            default_samplerate=float(raw["default_samplerate"]),
        )


def list_devices() -> list[DeviceInfo]:
    return [DeviceInfo.from_query(dict(d)) for d in sd.query_devices()]  # type: ignore[union-attr]


def _channels(dev: DeviceInfo, direction: Direction) -> int:
    return dev.max_input_channels if direction == "input" else dev.max_output_channels


def find_device(spec: str | int | None, direction: Direction) -> DeviceInfo:
    """Resolve a device: None = the system default, int = index, str = case-insensitive name substring."""
    try:
        devices = list_devices()
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from exc
    usable = [d for d in devices if _channels(d, direction) > 0]
    if spec is None:
        default = sd.default.device[0 if direction == "input" else 1]
        if default is not None and default >= 0:
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
    matches = [d for d in usable if spec.lower() in d.name.lower()]
    if not matches:
        names = ", ".join(repr(d.name) for d in usable) or "none"
        raise AudioDeviceError(f"no {direction} device matching {spec!r}; {direction} devices: {names}")
    exact = [d for d in matches if d.name.lower() == spec.lower()]
    return (exact or matches)[0]


def supported_rates(dev: DeviceInfo, direction: Direction, channels: int = 1) -> list[int]:
    check = sd.check_input_settings if direction == "input" else sd.check_output_settings
    rates: list[int] = []
    for rate in (int(dev.default_samplerate), *CANDIDATE_RATES):
        if rate in rates:
            continue
        try:
            check(device=dev.index, samplerate=rate, channels=channels, dtype="int16")
        except Exception:
            continue
        rates.append(rate)
    return rates


def pick_rate(dev: DeviceInfo, direction: Direction, channels: int = 1, forced: int | None = None) -> int:
    """The device's native rate if it accepts it, else the first candidate it accepts."""
    if forced:
        return forced
    rates = supported_rates(dev, direction, channels)
    if not rates:
        raise AudioDeviceError(f"{direction} device {dev.name!r} accepts none of the rates {CANDIDATE_RATES}")
    return rates[0]


def rescan() -> None:
    """Make PortAudio list devices afresh (a USB device plugged back in). Only with no stream open.

    sounddevice has no public call for this; re-initialising PortAudio is the documented way.
    Any failure is an `AudioDeviceError` (retried like a missing device), never an exception that
    ends the appliance; a PortAudio left uninitialised by a failed attempt is initialised next time.
    """
    try:
        if getattr(sd, "_initialized", 1) > 0:
            sd._terminate()  # type: ignore[attr-defined]
        sd._initialize()  # type: ignore[attr-defined]
    except Exception as exc:  # sounddevice.PortAudioError, or anything the ALSA error paths raise
        raise AudioDeviceError(f"cannot re-scan audio devices: {exc}") from exc


def close_stream(stream: sd.InputStream | sd.OutputStream | None, what: str) -> None:
    """Stop and close a stream; a vanished device may refuse, which is logged, not raised."""
    if stream is None:
        return
    try:
        stream.abort()
        stream.close()
    except Exception as exc:
        logging.getLogger("appliance.audio").warning("closing %s stream failed: %s", what, exc)


def stream_active(stream: sd.InputStream | sd.OutputStream | None) -> bool:
    return stream is not None and bool(stream.active)
