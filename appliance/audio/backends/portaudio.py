"""PortAudio through `sounddevice`: callback streams on PortAudio's own threads, ALSA devices."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import sounddevice as sd

from . import AudioCallback, AudioDeviceError, DeviceInfo, Direction
from .sounddevice_arrays import use_reshape

log = logging.getLogger("appliance.audio")
use_reshape(sd)  # no numpy 2.5 DeprecationWarning per PortAudio block (see sounddevice_arrays)

# Tried after the device's own default rate; many USB and HAT devices only do 44.1/48 kHz.
CANDIDATE_RATES = (48000, 44100, 32000, 24000, 16000, 96000)


class PortAudioStream:
    def __init__(self, stream: sd.InputStream | sd.OutputStream) -> None:
        self._stream = stream
        self.channels = int(stream.channels)

    @property
    def latency(self) -> float:
        return float(self._stream.latency)

    @property
    def active(self) -> bool:
        return bool(self._stream.active)

    def start(self) -> None:
        self._stream.start()

    def abort(self) -> None:
        """Stop at once, dropping buffered audio; the stream stays open (as when a device vanishes)."""
        self._stream.abort()

    def close(self) -> None:
        try:
            self._stream.abort()
            self._stream.close()
        except Exception as exc:
            log.warning("closing the audio stream failed: %s", exc)


class PortAudioBackend:
    name: Literal["sounddevice"] = "sounddevice"

    def list_devices(self) -> list[DeviceInfo]:
        try:
            hostapis = sd.query_hostapis()
            raw: Any = sd.query_devices()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot list audio devices: {exc}") from exc
        return [
            DeviceInfo(
                index=int(d["index"]),
                name=str(d["name"]),
                hostapi=str(hostapis[int(d["hostapi"])]["name"]),  # type: ignore[index]
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_samplerate=float(d["default_samplerate"]),
            )
            for d in raw
        ]

    def default_device(self, direction: Direction) -> int | None:
        index = sd.default.device[0 if direction == "input" else 1]
        return int(index) if index is not None and index >= 0 else None

    def supported_rates(self, dev: DeviceInfo, direction: Direction, channels: int) -> list[int]:
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

    def open_input(
        self, dev: DeviceInfo, rate: int, channels: int, block_frames: int, callback: AudioCallback
    ) -> PortAudioStream:
        return PortAudioStream(sd.InputStream(
            device=dev.index, samplerate=rate, channels=channels, dtype="int16",
            blocksize=block_frames, latency="low", callback=callback,
        ))

    def open_output(
        self, dev: DeviceInfo, rate: int, channels: int, block_frames: int, callback: AudioCallback
    ) -> PortAudioStream:
        return PortAudioStream(sd.OutputStream(
            device=dev.index, samplerate=rate, channels=channels, dtype="int16",
            blocksize=block_frames, latency="low", callback=callback,
        ))

    def rescan(self) -> None:
        """sounddevice has no public call for this; re-initialising PortAudio is the documented way.
        Any failure is an `AudioDeviceError` (retried like a missing device), never an exception that
        ends the appliance; a PortAudio left uninitialised by a failed attempt is initialised next time.
        """
        try:
            if getattr(sd, "_initialized", 1) > 0:
                sd._terminate()  # type: ignore[attr-defined]
            sd._initialize()  # type: ignore[attr-defined]
        except Exception as exc:  # sounddevice.PortAudioError, or anything the ALSA error paths raise
            raise AudioDeviceError(f"cannot re-scan audio devices: {exc}") from exc

    def play(self, dev: DeviceInfo, samples: np.ndarray, rate: int) -> None:
        sd.play(samples, rate, device=dev.index, blocking=True)

    def record(self, dev: DeviceInfo, frames: int, rate: int, channels: int) -> np.ndarray:
        return np.asarray(sd.rec(frames, rate, channels=channels, dtype="int16", device=dev.index, blocking=True))
