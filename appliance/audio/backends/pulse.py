"""PulseAudio / PipeWire directly, through the `soundcard` library (libpulse via cffi).

Why `soundcard`: compared with `pasimple` (libpulse-simple: blocking streams with full buffer
attributes, but no device listing, a 0.0.x release from 2024) and `pulsectl` (a maintained control
library that lists and sets volumes but carries no audio), soundcard does both listing and streams,
is maintained, and is pure Python over cffi, so it runs on arm64 with Debian's libpulse0 alone.
Its latency control is the `blocksize` of a stream, which it turns into the server-side buffer
(`tlength` for playback, `fragsize` for capture, with PA_STREAM_ADJUST_LATENCY). Its API is
blocking, so each stream runs a thread that turns it into PortAudio's callback shape: the capture
thread reads a block and hands it to the callback; the playback thread asks the callback for a
block and writes it, paced by the server's clock (a write returns once the server has room).

A PipeWire or PulseAudio echo-cancel source is just another source here: name it in
APPLIANCE_AUDIO__INPUT_DEVICE (e.g. "echo-cancel"), no ALSA plugin needed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Literal

import numpy as np

from . import AudioCallback, AudioDeviceError, DeviceInfo, Direction, StreamStatus

log = logging.getLogger("appliance.audio.pulse")

# The server converts rates itself; these are what the appliance may ask for, 48 kHz first
# (PipeWire's default rate; PulseAudio's is 44.1 kHz, which it resamples from without trouble).
RATES = (48000, 44100, 32000, 24000, 16000)
HOSTAPI = "PulseAudio"
_LATENCY_REFRESH_S = 0.5


def _soundcard() -> Any:
    """The library's PulseAudio module; importing it connects to the server."""
    try:
        import soundcard.pulseaudio as pulse
    except (Exception, AssertionError) as exc:  # it asserts the connection is ready
        raise AudioDeviceError(
            f"cannot reach a PulseAudio/PipeWire server ({type(exc).__name__}: {exc}); "
            "is it running, and PULSE_SERVER or XDG_RUNTIME_DIR set for this user?"
        ) from None
    return pulse


def _to_int16(block: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(block * 32768.0), -32768, 32767).astype(np.int16)


class _PulseStream:
    """A blocking soundcard stream driven by a thread, seen from outside as a callback stream."""

    def __init__(
        self, direction: Direction, key: str, rate: int, channels: int, block_frames: int,
        latency_frames: int, callback: AudioCallback,
    ) -> None:
        self.direction = direction
        self.key = key
        self.rate = rate
        self.channels = channels
        self.block_frames = block_frames
        self.latency_frames = max(block_frames, latency_frames)
        self._callback = callback
        self._latency = self.latency_frames / rate
        self._nap_s = 0.75 * block_frames / rate
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def latency(self) -> float:
        return self._latency

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._error is None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"pulse-{self.direction}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            self._stop.set()
            raise AudioDeviceError(f"pulse {self.direction} stream {self.key!r} did not start within 10 s")
        if self._error is not None:
            raise AudioDeviceError(f"cannot open pulse {self.direction} {self.key!r}: {self._error}")

    def _run(self) -> None:
        try:
            pulse = _soundcard()
            if self.direction == "input":
                mic = pulse.get_microphone(self.key, include_loopback=True)
                with mic.recorder(samplerate=self.rate, channels=self.channels, blocksize=self.block_frames) as rec:
                    self._ready.set()
                    self._capture(rec)
            else:
                speaker = pulse.get_speaker(self.key)
                with speaker.player(samplerate=self.rate, channels=self.channels,
                                    blocksize=self.latency_frames) as player:
                    self._ready.set()
                    self._playback(player)
        except BaseException as exc:  # the stream's owner sees it through `active` and its stall watch
            self._error = exc
            if self._ready.is_set():
                log.warning("pulse %s stream %r failed: %s", self.direction, self.key, exc)
        finally:
            self._ready.set()

    def _capture(self, rec: Any) -> None:
        status = StreamStatus()
        while not self._stop.is_set():
            block = _to_int16(rec.record(self.block_frames))
            self._callback(block, block.shape[0], None, status)

    def _playback(self, player: Any) -> None:
        status = StreamStatus()
        out = np.zeros((self.block_frames, self.channels), dtype=np.int16)
        refreshed = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - refreshed > _LATENCY_REFRESH_S:  # the server's measured latency, not asked per block
                refreshed = now
                self._latency = float(player.latency) or self._latency
            out[:] = 0
            self._callback(out, self.block_frames, None, status)
            player.play(out.astype(np.float32) / 32768.0)
            # play() polls every millisecond while the server's buffer is full; once it returns the
            # buffer is full again, so there is no room for the next block for about a block's time.
            # Sleeping most of that keeps the server fed with a fraction of the wake-ups.
            self._stop.wait(self._nap_s)

    def abort(self) -> None:
        """Stop the stream's thread (its server stream closes with it)."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            if self._thread.is_alive():
                log.warning("pulse %s stream %r did not stop within 2 s", self.direction, self.key)


class PulseBackend:
    name: Literal["pulse"] = "pulse"

    def __init__(self, latency_ms: int = 40) -> None:
        self.latency_ms = latency_ms

    def list_devices(self) -> list[DeviceInfo]:
        pulse = _soundcard()
        devices: list[DeviceInfo] = []
        try:
            for mic in pulse.all_microphones(include_loopback=True):
                devices.append(DeviceInfo(len(devices), str(mic.name), HOSTAPI, int(mic.channels), 0,
                                          float(RATES[0]), key=str(mic.id)))
            for speaker in pulse.all_speakers():
                devices.append(DeviceInfo(len(devices), str(speaker.name), HOSTAPI, 0, int(speaker.channels),
                                          float(RATES[0]), key=str(speaker.id)))
        except Exception as exc:
            raise AudioDeviceError(f"cannot list PulseAudio devices: {exc}") from exc
        return devices

    def default_device(self, direction: Direction) -> int | None:
        pulse = _soundcard()
        try:
            default = pulse.default_microphone() if direction == "input" else pulse.default_speaker()
        except Exception:
            return None
        for dev in self.list_devices():
            usable = dev.max_input_channels if direction == "input" else dev.max_output_channels
            if usable and dev.key == default.id:
                return dev.index
        return None

    def supported_rates(self, dev: DeviceInfo, direction: Direction, channels: int) -> list[int]:
        return list(RATES)

    def _frames(self, rate: int) -> int:
        return max(1, rate * self.latency_ms // 1000)

    def open_input(
        self, dev: DeviceInfo, rate: int, channels: int, block_frames: int, callback: AudioCallback
    ) -> _PulseStream:
        return _PulseStream("input", dev.key, rate, channels, block_frames, self._frames(rate), callback)

    def open_output(
        self, dev: DeviceInfo, rate: int, channels: int, block_frames: int, callback: AudioCallback
    ) -> _PulseStream:
        return _PulseStream("output", dev.key, rate, channels, block_frames, self._frames(rate), callback)

    def rescan(self) -> None:
        """Nothing cached: every listing asks the server."""

    def play(self, dev: DeviceInfo, samples: np.ndarray, rate: int) -> None:
        _soundcard().get_speaker(dev.key).play(
            samples.astype(np.float32) / 32768.0, samplerate=rate, channels=1, blocksize=self._frames(rate)
        )

    def record(self, dev: DeviceInfo, frames: int, rate: int, channels: int) -> np.ndarray:
        mic = _soundcard().get_microphone(dev.key, include_loopback=True)
        block = mic.record(frames, samplerate=rate, channels=channels, blocksize=self._frames(rate))
        return _to_int16(np.asarray(block))
