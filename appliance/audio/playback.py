"""Speaker output: a bounded jitter buffer drained by an output stream of the configured backend.

The session hands 24 kHz pcm16 chunks to `enqueue` (event-loop thread); they are resampled to the
device rate there, so the stream's callback (PortAudio's thread, or the pulse backend's writer
thread) only copies samples. The callback reports, per model
item, how much audio it has handed to the device, which feeds the SDK's playback tracker so an
interruption truncates the answer where the person stopped hearing it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .backends import AudioBackend, Stream, get_backend
from .devices import AudioDeviceError, DeviceInfo, close_stream, stream_active
from .formats import MODEL_RATE
from .reference import ReferenceBuffer
from .resample import StreamResampler

if TYPE_CHECKING:
    from ..triggers.self_wake import PlayedAudioTap

log = logging.getLogger("appliance.audio.playback")

PlayedCallback = Callable[[str, int, float], None]  # item_id, content_index, milliseconds

ITEMS_KEPT = 16
# An answer whose audio stops without its end for this long is taken as over: the player stops
# waiting for it (no busy flag held until the conversation's cap, no underrun counted every block).
STALE_ANSWER_S = 2.0


LEVEL_WINDOW_MS = 20  # the loudness envelope's resolution (the LEDs' "speaking" glow follows it)


@dataclass
class _Segment:
    samples: np.ndarray
    item_id: str | None
    content_index: int
    pos: int = 0
    envelope: np.ndarray | None = None  # RMS (0..1 of full scale) per level window


def loudness_envelope(samples: np.ndarray, window: int) -> np.ndarray:
    """RMS per `window` samples (the last window may be short), as a fraction of full scale."""
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    x = samples.astype(np.float32) / 32768.0
    full = x.size // window * window
    parts = [np.sqrt(np.mean(x[:full].reshape(-1, window) ** 2, axis=1))] if full else []
    if full < x.size:
        parts.append(np.sqrt(np.mean(x[full:] ** 2, keepdims=True)))
    return np.concatenate(parts).astype(np.float32)


@dataclass
class PlaybackStats:
    written_samples: int = 0
    underruns: int = 0
    dropped_samples: int = 0
    flushes: int = 0
    first_audio_at: float | None = None
    last_flush_latency_s: float | None = None
    last_flush_silent_at: float | None = None
    # Per answer item, the most recent ITEMS_KEPT only (a months-long run must not keep them all).
    item_played_ms: OrderedDict[str, float] = field(default_factory=OrderedDict)
    abandoned_answers: int = 0  # answers that stopped without an end-of-audio (a server went quiet)
    device_underflows: int = 0  # the device ran dry before a callback filled it (an xrun)


class Player:
    """The speaker: a bounded jitter buffer in front of an output stream (PortAudio or pulse).

    Threads: `enqueue`, `enqueue_device_rate`, `end_of_audio`, `flush`, `start`/`stop` run on the event
    loop (or the audio control thread for start/stop); `_callback` runs on the stream's thread and
    calls `on_played`/`on_drained` there (the conversation hops them onto the loop). A lock guards
    the segments both sides touch.
    """

    def __init__(
        self,
        device: DeviceInfo,
        rate: int,
        block_ms: int = 20,
        start_ms: int = 20,
        max_s: float = 120.0,
        on_played: PlayedCallback | None = None,
        on_drained: Callable[[], None] | None = None,
        backend: AudioBackend | None = None,
    ) -> None:
        self.device = device
        self._backend = backend  # resolved when the stream opens: building one touches no device
        self.rate = rate
        self.block_frames = max(1, rate * block_ms // 1000)
        self._start_samples = rate * start_ms // 1000
        self._max_samples = int(rate * max_s)
        self._level_window = max(1, rate * LEVEL_WINDOW_MS // 1000)
        self.on_played = on_played
        self.on_drained = on_drained
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._queued = 0
        self._playing = False  # past the start threshold, handing audio to the device
        self._ended = True  # the producer said no more audio is coming for now
        self._resampler = StreamResampler(MODEL_RATE, rate)
        self._channels = 1
        self._stream: Stream | None = None
        self._flush_requested_at: float | None = None
        self.audible_until = 0.0  # monotonic time the last non-silent sample leaves the speaker
        # Recent [start, end] spans of audible playback, so the echo gate can judge a microphone
        # block by what was playing when it was captured.
        self._spans: deque[list[float]] = deque(maxlen=64)
        self.callback_times: deque[float] = deque(maxlen=256)  # for diagnostics and the bench
        # What the speaker really played (silence included), for software echo cancellation.
        self.reference: ReferenceBuffer | None = None
        # What the speaker played while it played, for the wake word to recognise its own voice.
        self.played: PlayedAudioTap | None = None
        self.stats = PlaybackStats()
        self.gain = 1.0  # playback volume, applied as audio is queued (earcons included)
        self.last_callback_at = time.monotonic()  # the output stream's own heartbeat
        self._dry_since: float | None = None  # when the answer's audio ran out (no end yet)

    # -- producer side (event loop thread) ------------------------------------------------------
    def enqueue(self, pcm16: bytes, item_id: str | None = None, content_index: int = 0) -> None:
        samples = np.frombuffer(pcm16, dtype=np.int16)
        self._push(self._resampler.process(samples), item_id, content_index, ended=False)

    def enqueue_device_rate(self, samples: np.ndarray) -> None:
        """Already at the device rate (earcons, test tones); played once, then the buffer drains."""
        self._push(np.asarray(samples, dtype=np.int16), None, 0, ended=True)

    def end_of_audio(self, item_id: str | None = None, content_index: int = 0) -> None:
        """The producer finished an answer: push the resampler's tail and let the buffer drain."""
        self._push(self._resampler.flush(), item_id, content_index, ended=True)

    def _push(self, samples: np.ndarray, item_id: str | None, content_index: int, ended: bool) -> None:
        if self.gain != 1.0 and samples.size:
            samples = np.clip(samples * self.gain, -32768, 32767).astype(np.int16)
        with self._lock:
            if samples.size:
                room = self._max_samples - self._queued
                if samples.size > room:
                    self.stats.dropped_samples += samples.size - max(room, 0)
                    samples = samples[: max(room, 0)]
                if samples.size:
                    envelope = loudness_envelope(samples, self._level_window)
                    self._segments.append(_Segment(samples, item_id, content_index, envelope=envelope))
                    self._queued += samples.size
            self._ended = ended

    def flush(self) -> int:
        """Interruption: drop everything queued at once; returns the samples dropped."""
        with self._lock:
            dropped = self._queued
            self._segments.clear()
            self._queued = 0
            self._playing = False
            self._ended = True
            self._flush_requested_at = time.monotonic()
            self.stats.flushes += 1
        self._resampler.reset()
        now = time.monotonic()
        self.audible_until = min(self.audible_until, now + self._latency())
        with self._lock:
            if self._spans and self._spans[-1][1] > self.audible_until:
                self._spans[-1][1] = self.audible_until
        return dropped

    def was_audible(self, t: float, tail_s: float = 0.0) -> bool:
        """Was the speaker playing at monotonic time `t` (or within `tail_s` after it stopped)?"""
        with self._lock:
            return any(start <= t <= end + tail_s for start, end in self._spans)

    @property
    def level(self) -> float:
        """Loudness (RMS, 0..1 of full scale) of what the speaker is being handed now; 0 when silent.

        Read from any thread without a lock: the envelope was computed when the audio was queued, so
        this only indexes it at the playback position, and the audio callback does no extra work."""
        if not self._playing:
            return 0.0
        try:
            seg = self._segments[0]
        except IndexError:
            return 0.0
        env = seg.envelope
        if env is None or env.size == 0:
            return 0.0
        return float(env[min(seg.pos // self._level_window, env.size - 1)])

    @property
    def queued_ms(self) -> float:
        return 1000.0 * self._queued / self.rate

    @property
    def busy(self) -> bool:
        """Audio queued or still leaving the speaker."""
        return self._queued > 0 or time.monotonic() < self.audible_until

    # -- device side (PortAudio thread) ---------------------------------------------------------
    @property
    def latency(self) -> float:
        """The output device's own buffering, in seconds."""
        stream = self._stream
        return float(stream.latency) if stream is not None else 0.0

    def _latency(self) -> float:
        return self.latency

    def _callback(self, outdata: np.ndarray, frames: int, _time: object, status: Any) -> None:
        self.last_callback_at = called_at = time.monotonic()
        self.callback_times.append(called_at)
        out = np.zeros(frames, dtype=np.int16)
        played: dict[tuple[str, int], int] = {}
        drained = False
        with self._lock:
            if self._flush_requested_at is not None:
                self.stats.last_flush_silent_at = time.monotonic()
                self.stats.last_flush_latency_s = self.stats.last_flush_silent_at - self._flush_requested_at
                self._flush_requested_at = None
            if not self._playing and self._segments and (self._queued >= self._start_samples or self._ended):
                self._playing = True
            n = 0
            while self._playing and n < frames and self._segments:
                seg = self._segments[0]
                take = min(frames - n, seg.samples.size - seg.pos)
                out[n : n + take] = seg.samples[seg.pos : seg.pos + take]
                seg.pos += take
                n += take
                self._queued -= take
                if seg.item_id is not None:
                    key = (seg.item_id, seg.content_index)
                    played[key] = played.get(key, 0) + take
                if seg.pos >= seg.samples.size:
                    self._segments.popleft()
            if n:
                self._dry_since = None
            if self._playing and not self._segments:
                if self._ended:
                    self._playing = False
                    drained = True
                elif n < frames:
                    now = time.monotonic()
                    if self._dry_since is None:  # one underrun per dry spell, not one per block
                        self.stats.underruns += 1
                        self._dry_since = now
                    elif now - self._dry_since > STALE_ANSWER_S:
                        self.stats.abandoned_answers += 1
                        self._playing = False
                        self._ended = True
                        self._dry_since = None
                        drained = True
            if n:
                now = time.monotonic()
                if self.stats.first_audio_at is None:
                    self.stats.first_audio_at = now
                self.stats.written_samples += n
                self.audible_until = now + (n / self.rate) + self._latency()
                if self._spans and now <= self._spans[-1][1] + 0.05:
                    self._spans[-1][1] = self.audible_until
                else:
                    self._spans.append([now, self.audible_until])
        outdata[:] = out.reshape(-1, 1) if self._channels == 1 else np.repeat(out[:, None], self._channels, 1)
        underflow = bool(getattr(status, "output_underflow", False))
        if underflow:
            self.stats.device_underflows += 1
        if self.reference is not None:
            if underflow:  # the device played silence the reference never saw: the echo moved
                self.reference.mark_break()
            self.reference.write(out)
        if self.played is not None:
            self.played.write(out, n > 0, called_at + self._latency())
        for (item_id, content_index), count in played.items():
            ms = 1000.0 * count / self.rate
            records = self.stats.item_played_ms
            records[item_id] = records.pop(item_id, 0.0) + ms
            while len(records) > ITEMS_KEPT:
                records.popitem(last=False)
            if self.on_played is not None:
                self.on_played(item_id, content_index, ms)
        if drained and self.on_drained is not None:
            self.on_drained()

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def backend(self) -> AudioBackend:
        if self._backend is None:
            self._backend = get_backend("sounddevice")
        return self._backend

    def start(self) -> None:
        last_exc: Exception | None = None
        for channels in (1, 2):
            try:
                stream = self.backend.open_output(self.device, self.rate, channels, self.block_frames, self._callback)
            except Exception as exc:
                last_exc = exc
                continue
            self._channels = channels
            self._stream = stream
            try:
                stream.start()
            except Exception as exc:
                self._stream = None
                raise AudioDeviceError(f"cannot start output device {self.device.name!r}: {exc}") from exc
            log.info(
                "playback started",
                extra={
                    "event": "audio_open",
                    "direction": "output",
                    "device": self.device.name,
                    "rate": self.rate,
                    "channels": channels,
                    "backend": self.backend.name,
                },
            )
            return
        raise AudioDeviceError(f"cannot open output device {self.device.name!r} at {self.rate} Hz: {last_exc}")

    @property
    def active(self) -> bool:
        return stream_active(self._stream)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        close_stream(stream, "output")
