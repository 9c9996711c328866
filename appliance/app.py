"""The appliance: audio in and out, triggers, indicators, and the idle → conversation → idle loop.

Everything that happens is published on one event stream (`appliance.events`); the log, the metrics
and the LEDs subscribe to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from .audio.aec import EchoCanceller
from .audio.backends import AudioBackend, backend_for
from .audio.capture import MicStream
from .audio.devices import AudioDeviceError, find_device, pick_rate, rescan
from .audio.formats import MODEL_RATE
from .audio.pipeline import AudioSink, MicPipeline, WakeDetection, WakeDetector
from .audio.playback import Player
from .audio.reference import ReferenceBuffer
from .conversation.outcomes import ConversationError, ErrorKind
from .conversation.session import Conversation
from .events import (
    ButtonPressed,
    ConversationEnded,
    ErrorRaised,
    EventBus,
    Recovered,
    TriggerSource,
    Wake,
    log_subscriber,
)
from .indicators.earcons import Earcons
from .indicators.lights import StatusLights, build_status_lights
from .settings import Settings
from .state import CONVERSATION_STATES, State, StateMachine
from .telemetry import Telemetry, health_of
from .triggers.button import PushButton

log = logging.getLogger("appliance")


def wake_event(detection: WakeDetection, *, barge_in: bool = False) -> Wake:
    """A wake word's event: the stock model's score and, where one ran, the verifier's."""
    verifier = detection.verifier_score
    return Wake(
        source="wakeword",
        model=detection.model,
        score=round(float(detection.score), 3),
        verifier_score=None if verifier is None else round(float(verifier), 3),
        barge_in=True if barge_in else None,
    )


@dataclass
class Trigger:
    source: TriggerSource
    at: float


class Appliance:
    """The running appliance.

    Threads: every method runs on the asyncio event-loop thread. The microphone pipeline's worker
    thread and the PortAudio callbacks reach it only through `loop.call_soon_threadsafe`
    (`_on_wake`, `_on_audio_stalled`); gpiozero's button thread likewise (`PushButton`). Only this
    class (and the `Conversation` it runs) changes the state machine.
    """

    def __init__(self, settings: Settings, api_key: str, detector: WakeDetector | None) -> None:
        self.settings = settings
        self.api_key = api_key
        self.detector = detector
        self.events = EventBus()
        self.events.subscribe(log_subscriber)  # first: the log line is written before anything reacts
        self.state = StateMachine(self.events)
        self.telemetry = Telemetry()
        self.events.subscribe(self.telemetry.on_event)
        self.earcons = Earcons(settings.earcons)
        self._wake_sound_until = 0.0
        self.mic: MicStream | None = None
        self.player: Player | None = None
        self.pipeline: MicPipeline | None = None
        self.button: PushButton | None = None
        self.leds: StatusLights | None = None
        self.conversation: Conversation | None = None
        self.conversations = 0
        self.last_tick = time.monotonic()
        self._triggers: asyncio.Queue[Trigger] = asyncio.Queue(maxsize=1)
        self._audio_fault: asyncio.Event | None = None
        self._fault_reason = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: AudioSink | None = None
        self._released_early = False
        self._tasks: set[asyncio.Future[None]] = set()

    # -- audio ----------------------------------------------------------------------------------
    def _open_audio(self) -> None:
        a = self.settings.audio
        backend = self._audio_backend()
        in_dev = find_device(a.input_device, "input", backend)
        out_dev = find_device(a.output_device, "output", backend)
        in_rate = pick_rate(in_dev, "input", channels=a.input_channel + 1, forced=a.input_rate, backend=backend)
        out_rate = pick_rate(out_dev, "output", forced=a.output_rate, backend=backend)
        self.player = Player(out_dev, out_rate, a.output_block_ms, a.playback_start_ms, a.playback_max_s,
                             backend=backend)
        self.player.start()
        self.mic = MicStream(in_dev, in_rate, a.input_channel, a.block_ms, backend=backend)
        self.mic.start()
        assert self._loop is not None
        self.pipeline = MicPipeline(
            self.mic,
            self._loop,
            self.detector,
            on_wake=self._on_wake,
            on_stalled=self._on_audio_stalled,
            lookback_ms=self.settings.wake.preroll_lookback_ms,
        )
        if a.echo == "aec":
            # Reference: what the speaker played, read back aligned with the microphone.
            reference = ReferenceBuffer(capacity=out_rate * 2, delay=int(out_rate * a.aec_reference_delay_ms / 1000))
            self.player.reference = reference
            self.pipeline.cancel_echo(EchoCanceller(MODEL_RATE, tail_ms=a.aec_tail_ms), reference, out_rate)
        self.pipeline.start()

    def _audio_backend(self) -> AudioBackend:
        return backend_for(self.settings.audio)

    def _speaker_level(self) -> float:
        """What the speaker plays now (for the pixels' speaking glow); read from the pixels' thread."""
        player = self.player
        return player.level if player is not None else 0.0

    def _close_audio(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None
        for stream in (self.mic, self.player):
            if stream is not None:
                stream.stop()
        self.mic = None
        self.player = None

    def _on_audio_stalled(self, reason: str) -> None:
        self._fault_reason = reason
        if self._audio_fault is not None:
            self._audio_fault.set()
        if self.conversation is not None:
            self.conversation.fail(ConversationError("audio_device", reason))

    @property
    def audio_ok(self) -> bool:
        return bool(self.mic and self.mic.active and self.player and self.player.active)

    # -- triggers -------------------------------------------------------------------------------
    def _trigger(self, event: Wake) -> None:
        if self.state.state != State.IDLE:
            return
        source = event.source
        self.events.publish(event)
        assert self.pipeline is not None
        # Start keeping the model audio now, so speech right after the wake word is not lost.
        sink = self.pipeline.open_sink()
        self._released_early = False
        self.state.to(State.WAKING, source=source)
        length = self.earcons.play("wake", self.player)
        if length and self.player is not None:
            # The chime must not reach the model (software AEC removes it instead).
            self._wake_sound_until = time.monotonic() + length + self.player.latency + 0.05
        with contextlib.suppress(asyncio.QueueFull):
            self._triggers.put_nowait(Trigger(source, time.monotonic()))
        self._sink = sink

    def _on_wake(self, detection: WakeDetection) -> None:
        current = self.state.state
        if current == State.MUTED:
            return
        if current == State.IDLE:
            self._trigger(wake_event(detection))
        elif current in (State.SPEAKING, State.THINKING) and self.conversation is not None:
            self.events.publish(wake_event(detection, barge_in=True))
            self._spawn(self.conversation.barge_in())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine from a callback, holding a reference until it finishes."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def push_to_talk(self) -> bool:
        return self.settings.button.mode == "hold"

    def _on_short_press(self) -> None:
        current = self.state.state
        if current == State.IDLE:
            self._trigger(Wake(source="button"))
        elif current in CONVERSATION_STATES and self.conversation is not None:
            if self.push_to_talk:
                self.events.publish(ButtonPressed(action="talk"))
                self._spawn(self.conversation.talk())
            elif self.settings.button.in_conversation == "interrupt" and current in (State.SPEAKING, State.THINKING):
                self.events.publish(ButtonPressed(action="interrupt"))
                self._spawn(self.conversation.barge_in())
            else:
                self.events.publish(ButtonPressed(action="end"))
                self.conversation.end("button")

    def _on_release(self) -> None:
        if self.conversation is not None:
            self.events.publish(ButtonPressed(action="commit"))
            self.conversation.release()
        elif self.state.state in (State.WAKING, State.CONNECTING):
            self._released_early = True

    def _on_long_press(self) -> None:
        current = self.state.state
        if current == State.MUTED:
            self.state.to(State.IDLE, reason="unmuted")
        elif current == State.IDLE:
            self.state.to(State.MUTED, reason="button")
        elif current in CONVERSATION_STATES and self.conversation is not None:
            self.conversation.end("button")

    # -- main loop ------------------------------------------------------------------------------
    def audio_stats(self) -> dict[str, int]:
        stats = {"overruns": 0, "underruns": 0, "dropped_blocks": 0}
        if self.mic is not None:
            stats["overruns"] = self.mic.stats.overflows
            stats["dropped_blocks"] = self.mic.stats.dropped_blocks
        if self.player is not None:
            stats["underruns"] = self.player.stats.underruns
        return stats

    def health(self) -> tuple[bool, str]:
        return health_of(self.audio_ok, self.last_tick, self.settings.health.stale_after_s)

    async def _heartbeat(self) -> None:
        while True:
            self.last_tick = time.monotonic()
            await asyncio.sleep(1.0)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._audio_fault = asyncio.Event()
        self.events.bind_loop(self._loop)
        self._setup_gpio()
        self.telemetry.state.state(self.state.state.value)
        self.telemetry.bind(self.audio_stats, self.health)
        if self.settings.health.enabled:
            try:
                await self.telemetry.serve(self.settings.health.address)
            except OSError as exc:
                self.events.publish(ErrorRaised(
                    kind="health_listen", text=f"health endpoint not started on {self.settings.health.address}: {exc}"
                ))
        heartbeat = asyncio.create_task(self._heartbeat())
        # Start-up's objects (~190k: the SDK's modules, pydantic schemas) live as long as the process.
        # Frozen, the collector no longer walks them all in each full collection, holding the GIL for
        # about 0.1 s on a desktop x86 CPU (more on a Pi's slower cores) while the audio threads wait.
        gc.freeze()
        backoff = self.settings.session.error_backoff_s
        failed_before = False
        try:
            while not stop.is_set():
                try:
                    if failed_before:
                        rescan(self._audio_backend())
                    self._open_audio()
                except AudioDeviceError as exc:
                    self._close_audio()
                    failed_before = True
                    await self._error("audio_device", str(exc), backoff, stop, then_idle=False)
                    backoff = min(max(backoff * 2, 1.0), self.settings.session.error_backoff_max_s)
                    continue
                if failed_before:
                    self.events.publish(Recovered())
                    self.state.to(State.IDLE, reason="recovered")
                failed_before = False
                backoff = self.settings.session.error_backoff_s
                self._audio_fault.clear()
                await self._serve(stop)
                self._close_audio()
                if self._audio_fault.is_set() and not stop.is_set():
                    failed_before = True
                    await self._error("audio_device", self._fault_reason, backoff, stop, then_idle=False)
        finally:
            heartbeat.cancel()
            gc.unfreeze()
            await self.telemetry.close()
            self._close_audio()
            if self.button is not None:
                self.button.close()
            if self.leds is not None:
                self.leds.close()

    async def _serve(self, stop: asyncio.Event) -> None:
        """Idle ⇄ conversation until stop or an audio fault."""
        assert self._audio_fault is not None
        fault = self._audio_fault
        while not stop.is_set() and not fault.is_set():
            trigger_task = asyncio.ensure_future(self._triggers.get())
            stop_task = asyncio.ensure_future(stop.wait())
            fault_task = asyncio.ensure_future(fault.wait())
            done, pending = await asyncio.wait(
                {trigger_task, stop_task, fault_task}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if trigger_task in done:
                await self._converse(trigger_task.result(), stop)

    async def _converse(self, trigger: Trigger, stop: asyncio.Event) -> None:
        assert self.player is not None and self.pipeline is not None
        sink = self._sink
        assert sink is not None
        self.state.to(State.CONNECTING)
        ptt = self.push_to_talk and trigger.source == "button"
        self.conversation = Conversation(self.settings, self.api_key, self.player, sink, self.state, push_to_talk=ptt)
        if ptt and self._released_early:  # let go before the session was even created
            self.conversation.release()
        if self.settings.audio.echo != "aec":
            self.conversation.mute_until(self._wake_sound_until)
        stop_watch = asyncio.ensure_future(self._end_on_stop(stop, self.conversation))
        try:
            opened_after_s = time.monotonic() - trigger.at
            result = await self.conversation.run()
            self.conversations += 1
            self.events.publish(ConversationEnded(
                reason=result.reason,
                duration_s=round(result.duration_s, 2),
                connect_ms=round(result.connect_ms, 1),
                sent_audio_ms=round(result.sent_audio_ms),
                dropped_blocks=result.dropped_blocks,
                wake_to_open_ms=round(1000 * opened_after_s + result.connect_ms, 1),
            ))
            self.player.flush()
            self.earcons.play("done", self.player)
            self.state.to(State.IDLE)
        except ConversationError as exc:
            self.player.flush()
            await self._error(exc.kind, str(exc), self.settings.session.error_backoff_s, stop)
        finally:
            stop_watch.cancel()
            self.pipeline.close_sink()
            self.conversation = None

    async def _end_on_stop(self, stop: asyncio.Event, conversation: Conversation) -> None:
        await stop.wait()
        conversation.end("stopped")

    async def _error(
        self, kind: ErrorKind, message: str, backoff: float, stop: asyncio.Event, *, then_idle: bool = True
    ) -> None:
        """Show and log an error, wait ``backoff`` (or until stop). Audio errors stay in ``error`` until
        the devices open again (``then_idle=False``), so the LEDs do not flash "idle" between retries."""
        if self.player is not None and self.player.active:
            self.earcons.play("error", self.player)
        if self.state.state != State.ERROR:
            self.state.to(State.ERROR, kind=kind, reason=message)
        self.events.publish(ErrorRaised(
            kind=kind, retry_in_s=backoff, text=f"{kind}: {message}; retrying in {backoff:.1f} s"
        ))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        if then_idle:
            self.state.to(State.IDLE)

    def _setup_gpio(self) -> None:
        """Button and LEDs. A wiring or driver problem is logged and the appliance runs without them
        (the wake word still works), rather than failing to start over and over."""
        try:
            self._setup_button_and_leds()
        except Exception as exc:
            self.events.publish(ErrorRaised(kind="gpio", text=f"GPIO unavailable, running without button/LEDs: {exc}"))

    def _setup_button_and_leds(self) -> None:
        assert self._loop is not None
        b = self.settings.button
        if b.pin is not None:
            ptt = b.mode == "hold"
            self.button = PushButton(
                b.pin, self._loop, self._on_short_press,
                on_long_press=None if ptt else self._on_long_press,
                on_release=self._on_release if ptt else None,
                pull_up=b.pull_up, bounce_s=b.bounce_s, hold_s=b.hold_s,
            )
        self.leds = build_status_lights(self.settings.leds, level=self._speaker_level)
        if self.leds is not None:
            self.events.subscribe(self.leds.on_event)
