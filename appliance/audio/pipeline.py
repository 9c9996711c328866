"""The microphone's consumer: one worker thread turns device-rate blocks into
16 kHz audio for the wake word and 24 kHz pcm16 for the model.

The wake word reads the raw microphone in every echo mode. With a speaker next to the mic (``gate``
and ``aec``), a detection that what the speaker played explains is ignored (``self_wake.py``): the
raw echo is a faithful copy of what was played, so a twin detector scoring the played audio predicts
it. (The echo canceller's residual is not: fed to the wake word, it woke the verifier on parts of an
answer the clean audio does not score, so the filter could not explain those wakes.)

The 24 kHz side is made only while a conversation listens (or the echo canceller, which must
follow the room all along, runs): idle, the worker keeps the last `lookback_ms` of device-rate
blocks, and when a conversation opens its sink it resamples them first, so the words right after the
wake word are not lost. Idle costs the wake word's resampler alone, and no hand-off to the loop per
block (the 24 kHz resampler and its hand-off were a fifth of what the idle path cost over the
wake word's own scoring). With the echo canceller the 24 kHz blocks go to the loop all along,
which keeps the look-back ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..events import (
    ApplianceEvent,
    EchoHeardByModel,
    EchoLeaked,
    EchoNotConverging,
    EchoRelearning,
    MicBlockFailed,
    WakeIgnored,
    log_subscriber,
)
from ..triggers.self_wake import PlayedWakeFilter
from .aec import EchoCanceller
from .capture import MicStream
from .echo_leak import LOUD_FRAME_RMS, EchoHistory, loudest_frame_rms
from .echo_learning import EchoLearning
from .formats import MODEL_RATE, WAKE_RATE
from .reference import CaptureReferenceReader, ReferenceBuffer
from .resample import StreamResampler

log = logging.getLogger("appliance.audio.pipeline")

FAR_END_ACTIVE_RMS = 100.0
LIKENESS_WINDOW_S = 0.3  # how much of the trusted canceller's output is compared with the reference
LIKENESS_CHECK_EVERY_S = 0.04  # of audio: every other block at most (an FFT, 1.7 ms on x86, while double talk lasts)
MAX_FAILED_BLOCKS = 50  # blocks failing without a good second between them: give up and reopen the audio


class WakeDetection(Protocol):
    model: str
    score: float
    verifier_score: float | None
    stock_fired: bool


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
    """The microphone's consumer.

    Threads: `start`/`stop`, `open_sink`/`close_sink` and `cancel_echo` are called on the event loop;
    `_run` (→ `process_block`) is its own worker thread, the only reader of the mic queue; it hands
    wake detections, stalls and 24 kHz blocks to the loop with `call_soon_threadsafe` (`_deliver`
    runs on the loop).
    """

    def __init__(
        self,
        mic: MicStream,
        loop: asyncio.AbstractEventLoop,
        detector: WakeDetector | None,
        on_wake: Callable[[WakeDetection], None],
        on_stalled: Callable[[str], None],
        lookback_ms: int = 300,
        stall_after_s: float = 2.0,
        publish: Callable[[ApplianceEvent], None] = log_subscriber,
    ) -> None:
        self.mic = mic
        self._publish = publish  # the appliance's EventBus.publish (safe from this worker thread)
        self._loop = loop
        self._detector = detector
        self._on_wake = on_wake
        self._on_stalled = on_stalled
        self._stall_after_s = stall_after_s
        self._to_wake = StreamResampler(mic.rate, WAKE_RATE)
        self._to_model = StreamResampler(mic.rate, MODEL_RATE)
        block_ms = max(1, 1000 * mic.block_frames // mic.rate)
        ring_blocks = max(1, lookback_ms // block_ms)
        self._ring: deque[tuple[float, bytes]] = deque(maxlen=ring_blocks)  # 24 kHz, on the loop (AEC)
        self._idle_ring: deque[tuple[float, np.ndarray]] = deque(maxlen=ring_blocks)  # device rate, worker's
        self._lookback = lookback_ms > 0
        self._sink: AudioSink | None = None
        self._fed_sink: AudioSink | None = None  # the sink the worker last handed 24 kHz audio for
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._aec: EchoCanceller | None = None
        self._reference: ReferenceBuffer | None = None
        self._reference_rate = MODEL_RATE
        self._ref_to_model: StreamResampler | None = None
        self._mic_pending = np.zeros(0, dtype=np.int16)
        self._ref_pending = np.zeros(0, dtype=np.int16)
        self.echo_learning = EchoLearning()  # may the canceller's output reach the model yet?
        self._echo_history = EchoHistory()  # what the model heard lately, to judge its speech events
        self._relearn = threading.Event()  # set on the loop, acted on by the worker (it owns the learning)
        self._audio_since_likeness = 0  # samples of agent speech since the last likeness check
        self._echo_breaks_seen = 0
        self.processed_blocks = 0
        self.last_tick = time.monotonic()
        self.wake_cpu_s = 0.0
        self.failed_blocks = 0
        self._played_wakes: PlayedWakeFilter | None = None

    # -- event-loop side ------------------------------------------------------------------------
    def cancel_echo(self, canceller: EchoCanceller, reference: ReferenceBuffer, reference_rate: int) -> None:
        """Clean the model-bound audio with `canceller`, using what the speaker played as reference
        (the wake word keeps hearing the raw microphone, see the module doc). Call before `start`."""
        self._aec = canceller
        self._reference = reference
        self._reference_rate = reference_rate
        self._ref_to_model = StreamResampler(reference_rate, MODEL_RATE)
        self.mic.read_reference = CaptureReferenceReader(reference, reference_rate, self.mic.rate).read_for

    def ignore_played_wakes(self, played: PlayedWakeFilter) -> None:
        """Ignore wake-word detections that what the speaker played explains. Call before `start`."""
        self._played_wakes = played

    def _cancel(self, block: np.ndarray, samples24: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
        assert self._aec is not None and self._reference is not None and self._ref_to_model is not None
        if ref is None:  # captured before cancel_echo attached the reader, or handed in directly (bench)
            ref = self._reference.read(round(block.size * self._reference_rate / self.mic.rate))
        # The two resamplers release samples in different bursts: pair them up sample for sample.
        self._mic_pending = np.concatenate([self._mic_pending, samples24])
        self._ref_pending = np.concatenate([self._ref_pending, self._ref_to_model.process(ref)])
        n = min(self._mic_pending.size, self._ref_pending.size)
        mic_part, ref_part = self._mic_pending[:n], self._ref_pending[:n]
        cleaned = self._aec.process(mic_part, ref_part)
        self._mic_pending, self._ref_pending = self._mic_pending[n:], self._ref_pending[n:]
        self._notice_echo_breaks()
        self._echo_history.add(mic_part, ref_part, cleaned)
        sent = self._gate_untrusted(mic_part, ref_part, cleaned) if n else cleaned
        if sent is not cleaned:
            self._echo_history.mute_last(sent.size)  # the model did not hear it
        return sent

    def _gate_untrusted(self, mic_part: np.ndarray, ref_part: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
        """Until the canceller is seen to cancel the room's echo (it keeps what it learned across
        conversations), it would let the agent's voice through: mute it while the agent speaks. Once
        trusted it is still watched: an echo leaking through again mutes it as at start."""
        learning = self.echo_learning
        if self._relearn.is_set():
            self._relearn.clear()
            learning.restart()
        if float(np.sqrt(np.mean(ref_part.astype(np.float64) ** 2))) <= FAR_END_ACTIVE_RMS:  # the agent is silent
            return cleaned
        learning.observe(mic_part, cleaned)
        withdrawn = False
        self._audio_since_likeness += mic_part.size
        if (learning.loud_while_trusted and loudest_frame_rms(cleaned) > LOUD_FRAME_RMS
                and self._audio_since_likeness >= LIKENESS_CHECK_EVERY_S * MODEL_RATE):
            # A person, or the echo getting through (its remnant, or the echo path moved without an
            # xrun we saw)? An FFT over half a second, only for a loud block of the trusted output.
            self._audio_since_likeness = 0
            if self._echo_history.judge_last(LIKENESS_WINDOW_S).echo:
                learning.withdraw()
                withdrawn = True
        if withdrawn:
            self._publish(EchoLeaked(withdrawn=learning.withdrawn))
        if learning.too_slow():
            self._publish(EchoNotConverging(learned_s=round(learning.learned_s, 1),
                                            erle_db=round(learning.erle_db, 1),
                                            residual_rms=round(learning.residual_rms)))
        return cleaned if learning.ready else np.zeros_like(cleaned)

    def model_heard_echo(self) -> bool:
        """The model reports speech while the agent speaks: was what it heard lately our own echo?
        If so the canceller learns again (muted meanwhile), and the caller stops trusting it for the
        conversation. Called on the event loop."""
        if self._aec is None:
            return False
        verdict = self._echo_history.judge_last()
        if verdict.echo:
            self._relearn.set()
            self._publish(EchoHeardByModel(erle_db=round(verdict.erle_db, 1),
                                           loudest_rms=round(verdict.loudest_rms),
                                           correlation=round(verdict.correlation, 2)))
        return verdict.echo

    def _notice_echo_breaks(self) -> None:
        """An xrun (the speaker ran dry, the microphone lost samples) moves the echo against the
        reference by the gap; even 20 ms leaves the canceller cancelling nothing for seconds, and
        the model would hear the agent. Mute again, as at start, until it has re-learned."""
        assert self._reference is not None
        breaks = self._reference.breaks + self.mic.stats.overflows
        if breaks == self._echo_breaks_seen:
            return
        self._echo_breaks_seen = breaks
        if self.echo_learning.ready:  # one line per re-learning, however many xruns
            self._publish(EchoRelearning(overflows=self.mic.stats.overflows, reference_breaks=self._reference.breaks))
        self.echo_learning.restart()

    def open_sink(self, max_seconds: float = 30.0) -> AudioSink:
        """Start collecting model audio for a conversation, beginning with the look-back ring."""
        block_ms = max(1, 1000 * self.mic.block_frames // self.mic.rate)
        sink = AudioSink(max_blocks=int(max_seconds * 1000 / block_ms))
        if self._lookback and self._aec is not None:  # else the worker resamples its idle ring first
            for captured_at, block in self._ring:
                sink.put(block, captured_at)
        self._sink = sink
        return sink

    def close_sink(self) -> None:
        self._sink = None

    def _deliver(self, block: bytes, captured_at: float) -> None:
        if self._aec is not None:
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

    @property
    def alive(self) -> bool:
        """Is the worker thread running? (Health checks it, with `last_tick`.)"""
        return self._thread is not None and self._thread.is_alive()

    def _report(self, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the appliance is shutting down
            self._loop.call_soon_threadsafe(self._on_stalled, reason)

    def _run(self) -> None:
        # The worker must never die silently: the wake word would stop while the stream and the
        # health check look fine. A failing block is skipped and logged; failing on and on, or an
        # escaping error, is reported as an audio fault (the appliance reopens the audio).
        try:
            self._work()
        except BaseException as exc:
            if not self._stop.is_set():
                log.exception("microphone worker died", extra={"event": "pipeline_died"})
                self._report(f"microphone worker died: {type(exc).__name__}: {exc}")

    def _work(self) -> None:
        stalled_reported = False
        failures = 0  # in the current spell of failures
        good_since_failure = 0
        while not self._stop.is_set():
            item = self.mic.read(timeout=0.2)
            self.last_tick = time.monotonic()
            if item is None:
                silent_for = time.monotonic() - self.mic.last_block_at
                if not stalled_reported and (silent_for > self._stall_after_s or not self.mic.active):
                    stalled_reported = True
                    reason = "input stream stopped" if not self.mic.active else f"no audio for {silent_for:.1f} s"
                    self._report(reason)
                continue
            stalled_reported = False
            try:
                self.process_block(item.samples, item.captured_at, item.reference)
            except Exception as exc:
                failures += 1
                good_since_failure = 0
                self.failed_blocks += 1
                if failures == 1:  # one log line per spell of failures, not one per block
                    self._publish(MicBlockFailed(error=type(exc).__name__, text=str(exc)))
                if failures >= MAX_FAILED_BLOCKS:
                    self._report(f"microphone processing keeps failing: {type(exc).__name__}: {exc}")
                    return
                continue
            good_since_failure += 1
            if good_since_failure >= MAX_FAILED_BLOCKS:  # a second of good blocks ends the spell
                failures = 0

    def process_block(self, block: np.ndarray, captured_at: float | None = None,
                      reference: np.ndarray | None = None) -> None:
        """Wake word on `block`; its 24 kHz copy (echo-cancelled against `reference`, what the
        speaker played while it was captured) to the conversation."""
        captured_at = time.monotonic() if captured_at is None else captured_at
        self.processed_blocks += 1
        if self._detector is not None:
            started = time.process_time()
            samples16 = self._to_wake.process(block)
            detections = self._detector.process(samples16) if samples16.size else []
            if self._played_wakes is not None:
                self._played_wakes.update()  # score what the speaker played before the mic heard it
            self.wake_cpu_s += time.process_time() - started
            for detection in detections:
                if self._played_wakes is not None and self._played_wakes.explains(captured_at, detection.stock_fired):
                    self._publish(WakeIgnored(reason="played_audio", model=detection.model,
                                              score=round(float(detection.score), 3)))
                    continue
                self._loop.call_soon_threadsafe(self._on_wake, detection)
        if self._aec is None and not self._model_audio_wanted(block, captured_at):
            return
        samples24 = self._to_model.process(block)
        if self._aec is not None:
            samples24 = self._cancel(block, samples24, reference)
        if samples24.size:
            self._loop.call_soon_threadsafe(self._deliver, samples24.tobytes(), captured_at)

    def _model_audio_wanted(self, block: np.ndarray, captured_at: float) -> bool:
        """Without the echo canceller: is a conversation listening? Idle, `block` is only kept for
        the look-back; once a new sink is open, the look-back goes to it first, resampled afresh."""
        sink = self._sink  # set and cleared on the loop: read once
        if sink is None:
            self._fed_sink = None
            if self._lookback:
                self._idle_ring.append((captured_at, block))
            return False
        if sink is not self._fed_sink:
            self._fed_sink = sink
            self._to_model.reset()  # the look-back follows a gap: no filter state from before it
            while self._idle_ring:
                at, kept = self._idle_ring.popleft()
                kept24 = self._to_model.process(kept)
                if kept24.size:
                    self._loop.call_soon_threadsafe(self._deliver, kept24.tobytes(), at)
        return True
