"""The appliance's lifecycle: audio (`streams.py`), the agent layer, indicators, the idle →
conversation → idle loop and its backoff. Commands from every input go through `controls.py`.

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
from typing import TYPE_CHECKING, Any

from .announcements import announcer_for
from .audio.capture import MicStream
from .audio.devices import AudioDeviceError
from .audio.pipeline import AudioSink, MicPipeline, WakeDetector
from .audio.playback import Player
from .button_actions import ButtonActions
from .controls import Controls
from .conversation.agent import AgentSetup
from .conversation.agents import load_agents
from .conversation.mcp import McpManager, load_servers_file
from .conversation.outcomes import ConversationError, ErrorKind
from .conversation.session import Conversation
from .conversation.tools import BUILTIN_TOOL_NAMES, ToolServices
from .conversation.tools.memory import MemoryBook
from .conversation.tools.timers import TimerBook
from .conversation.transcripts import TranscriptWriter
from .enrolment_flow import EnrolmentFlow
from .events import (
    ConversationEnded,
    ErrorRaised,
    EventBus,
    Recovered,
    TriggerSource,
    Wake,
    WakeIgnored,
    log_subscriber,
)
from .indicators.earcons import Earcons
from .indicators.lights import StatusLights, build_status_lights, play_for
from .integrations import start_mqtt
from .redaction import register_secret
from .ringing import TimerRinger
from .settings import Settings
from .state import State, StateMachine
from .store import Store
from .streams import AudioStreams
from .telemetry import Telemetry, health_of
from .triggers.button import PushButton
from .web.server import WebServer

if TYPE_CHECKING:
    from .integrations.bridge import MqttBridge

log = logging.getLogger("appliance")

ANSWERED_ELSEWHERE_S = 1.0  # the light shown when another device of the home answers a wake
AUDIO_STABLE_S = 30.0  # audio that ran this long before a fault restarts the backoff from the start


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run `work` unless `stop` comes first (then `work` is cancelled). True when it ran."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True


@dataclass
class Trigger:
    source: TriggerSource
    at: float


class Appliance:
    """The running appliance.

    Threads: every method runs on the asyncio event-loop thread. The microphone pipeline's worker
    thread and the PortAudio callbacks reach it only through `loop.call_soon_threadsafe`
    (`controls.wake_word`, `_on_audio_stalled`); gpiozero's button thread likewise (`PushButton`).
    Commands from every input go through `self.controls` (which this class serves as its
    `Lifecycle`); only this class, `controls`, the ringer, the announcer and the running `Conversation` change the
    state machine.
    """

    def __init__(
        self, settings: Settings, api_key: str, detector: WakeDetector | None, store: Store | None = None
    ) -> None:
        self.settings = settings
        self.api_key = api_key
        register_secret(api_key)
        self.detector = detector
        self.store = store if store is not None else Store(settings.data_dir)
        self.events = EventBus()
        self.events.subscribe(log_subscriber)  # first: the log line is written before anything reacts
        self.state = StateMachine(self.events)
        self.conversation: Conversation | None = None
        self.released_early = False
        self.controls = Controls(self.state, self.events, self.store, self, settings.audio.volume)
        self.buttons = ButtonActions(self.controls, settings.button)
        self.telemetry = Telemetry()
        self.events.subscribe(self.telemetry.on_event)
        from .triggers.learning import attach_wake_profiles  # (the detector's modules are loaded by then)

        self.wake_learning = attach_wake_profiles(detector, self.store, self.events, settings.wake.learning)
        self.earcons = Earcons(settings.earcons)
        self.controls.enrolment = EnrolmentFlow(self)  # "teach it my voice" from the page, the API, by voice
        self._setup_agent_layer()
        self._wake_sound_until = 0.0
        self.audio = AudioStreams(settings, detector, self.events, on_wake=self.controls.wake_word,
                                  on_stalled=self._on_audio_stalled, volume=lambda: self.controls.volume)
        self.button: PushButton | None = None
        self.leds: StatusLights | None = None
        self.conversations = 0
        self.last_tick = time.monotonic()
        self._triggers: asyncio.Queue[Trigger] = asyncio.Queue(maxsize=1)
        self._audio_fault: asyncio.Event | None = None
        self._fault_reason = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: AudioSink | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self.mqtt: MqttBridge | None = None  # Home Assistant / fleet / arbitration, when a broker is set

    # -- audio (streams.py) ------------------------------------------------------------------------
    @property
    def mic(self) -> MicStream | None:
        return self.audio.mic

    @property
    def player(self) -> Player | None:
        return self.audio.player

    @property
    def pipeline(self) -> MicPipeline | None:
        return self.audio.pipeline

    def _check_output(self) -> None:
        reason = self.audio.output_stall()
        if reason is not None and self._audio_fault is not None and not self._audio_fault.is_set():
            self._on_audio_stalled(reason)

    def _on_audio_stalled(self, reason: str) -> None:
        self._fault_reason = reason
        if self._audio_fault is not None:
            self._audio_fault.set()
        if self.conversation is not None:
            self.conversation.fail(ConversationError("audio_device", reason))

    @property
    def audio_ok(self) -> bool:
        return self.audio.ok

    # -- the agent layer: tools, timers, memory, MCP servers, transcripts ------------------------
    def _setup_agent_layer(self) -> None:
        """Raises AgentsFileError / McpConfigError when their files cannot be used (checked at start)."""
        s = self.settings
        self.timers = TimerBook(self.store, self.events)
        self.memory = MemoryBook(self.store)
        self.mcp: McpManager | None = None
        if s.mcp.servers_file is not None:
            self.mcp = McpManager(
                load_servers_file(s.mcp.servers_file), self.events, connect_timeout_s=s.mcp.connect_timeout_s,
                tool_timeout_s=s.agent.tool_timeout_s, reconnect_max_s=s.mcp.reconnect_max_s,
            )
        services = ToolServices(s, self.timers, self.memory, volume=self.controls, enrolment=self.controls)
        self.agents = AgentSetup(s, load_agents(s, set(BUILTIN_TOOL_NAMES)), services, self.mcp)
        self.ringer = TimerRinger(
            self.timers, self.state, self.events,
            play=lambda: self.earcons.play("timer", self.player),
            ready=lambda: self.audio_ok, rest_state=self.controls.rest_state, ring_s=s.agent.timer_ring_s,
        )
        self.controls.ringer = self.ringer
        self.controls.announcer = self.announcer = announcer_for(self)
        self.transcripts: TranscriptWriter | None = None
        if s.transcripts.enabled:
            self.transcripts = TranscriptWriter(s.data_dir, s.transcripts.retention_days, s.transcripts.retention_mb)
            self.events.subscribe(self.transcripts.on_event)

    # -- what `controls` and the page read and ask of the lifecycle ------------------------------
    @property
    def muted(self) -> bool:
        return self.controls.muted

    @property
    def volume(self) -> int:
        return self.controls.volume

    def apply_volume(self, percent: int) -> None:
        self.audio.set_volume(percent)

    # -- triggers (through `controls`) ---------------------------------------------------------
    def begin(self, event: Wake) -> bool:
        """Idle → waking: keep the audio, chime, queue the conversation. False while the audio reopens."""
        if self.state.state != State.IDLE:
            return False
        source = event.source
        if self.pipeline is None:  # the audio is being reopened (a fault was just seen): nothing to hear with
            self.events.publish(WakeIgnored(reason="audio_reopening", source=source))
            return False
        self.events.publish(event)
        # Start keeping the model audio now, so speech right after the wake word is not lost.
        sink = self.pipeline.open_sink()
        self.released_early = False
        self.state.to(State.WAKING, source=source)
        length = self.earcons.play("wake", self.player)
        if length and self.player is not None:
            # The chime must not reach the model (software AEC removes it instead).
            self._wake_sound_until = time.monotonic() + length + self.player.latency + 0.05
        with contextlib.suppress(asyncio.QueueFull):
            self._triggers.put_nowait(Trigger(source, time.monotonic()))
        self._sink = sink
        return True

    def answered_elsewhere(self) -> None:
        """Another device of the home answers this wake: a short dim light, then as before."""
        if self.leds is not None:
            self.spawn(play_for(self.leds, "answered_elsewhere", ANSWERED_ELSEWHERE_S))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine from a callback, holding a reference until it finishes."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- main loop ------------------------------------------------------------------------------
    def audio_stats(self) -> dict[str, int]:
        """Audio counters over the process's life (streams that were closed included)."""
        return self.audio.stats()

    def health(self) -> tuple[bool, str]:
        pipeline = self.pipeline
        return health_of(
            self.audio_ok,
            self.last_tick,
            self.settings.health.stale_after_s,
            pipeline_tick=None if pipeline is None else pipeline.last_tick,
            pipeline_alive=pipeline is None or pipeline.alive,
        )

    async def _heartbeat(self) -> None:
        while True:
            self.last_tick = time.monotonic()
            self._check_output()
            await asyncio.sleep(1.0)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._audio_fault = asyncio.Event()
        self.events.bind_loop(self._loop)
        self._setup_gpio()
        self.telemetry.state.state(self.state.state.value)
        if self.controls.muted:
            self.state.to(State.MUTED, reason="restored")
        self.telemetry.bind(self.audio_stats, self.health)
        self.mqtt = start_mqtt(self)
        self.controls.arbitration = self.mqtt.arbitration if self.mqtt is not None else None
        web: WebServer | None = None
        if self.settings.health.enabled:
            web = WebServer(self.settings, self.telemetry, self)
            try:
                await web.start()
            except OSError as exc:
                self.events.publish(ErrorRaised(
                    kind="health_listen", text=f"health endpoint not started on {self.settings.health.address}: {exc}"
                ))
        background = [asyncio.create_task(self._heartbeat()),
                      asyncio.create_task(self.ringer.run(), name="timers"),
                      asyncio.create_task(self.announcer.run(), name="announcements"),
                      asyncio.create_task(self.controls.keep_saving(), name="unsaved settings")]
        if self.wake_learning is not None:  # the CLI's enrolments and forgets apply without a restart
            background.append(asyncio.create_task(self.wake_learning.follow_other_writers(), name="profiles"))
        # Start-up's objects (~190k: the SDK's modules, pydantic schemas) live as long as the process.
        # Frozen, the collector no longer walks them all in each full collection, holding the GIL for
        # about 0.1 s on a desktop x86 CPU (more on a Pi's slower cores) while the audio threads wait.
        gc.freeze()
        first_backoff = self.settings.session.error_backoff_s
        backoff = first_backoff
        failed_before = False
        try:
            if self.mcp is not None:
                # Once, at start-up, so the first answer is not slowed by spawning servers; waited for at
                # most the connect timeout. One that fails is logged and retried in the background.
                await _unless_stopped(self.mcp.start(wait_s=self.settings.mcp.connect_timeout_s), stop)
            while not stop.is_set():
                try:
                    if failed_before:
                        await self.audio.rescan()
                    if not await _unless_stopped(self.audio.open(self._loop), stop):
                        break
                except AudioDeviceError as exc:
                    await self.audio.close()
                    failed_before = True
                    await self._error("audio_device", str(exc), backoff, stop, then_idle=False)
                    backoff = self._next_backoff(backoff)
                    continue
                if failed_before:
                    self.events.publish(Recovered())
                    self.state.to(self.controls.rest_state(), reason="recovered")
                failed_before = False
                self._audio_fault.clear()
                await self._serve(stop)
                ran_for = time.monotonic() - self.audio.opened_at
                await self.audio.close()
                if self._audio_fault.is_set() and not stop.is_set():
                    failed_before = True
                    # A device that opens and then stalls at once is not retried every few seconds
                    # forever: the backoff starts again only after the audio ran well for a while.
                    backoff = first_backoff if ran_for >= AUDIO_STABLE_S else backoff
                    await self._error("audio_device", self._fault_reason, backoff, stop, then_idle=False)
                    backoff = self._next_backoff(backoff)
        finally:
            if self.mqtt is not None:
                await self.mqtt.close()
            for task in background:
                task.cancel()
            if self.mcp is not None:
                await self.mcp.close()
            gc.unfreeze()
            if web is not None:
                await web.close()
            await self.audio.close()
            if self.button is not None:
                self.button.close()
            if self.leds is not None:
                self.leds.close()

    def _next_backoff(self, backoff: float) -> float:
        return min(max(backoff * 2, 1.0), self.settings.session.error_backoff_max_s)

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
        ptt = self.buttons.push_to_talk and trigger.source == "button"
        self.conversation = Conversation(
            self.settings, self.api_key, self.player, sink, self.state, push_to_talk=ptt, agents=self.agents
        )
        pipeline, echo = self.pipeline, self.conversation.echo
        echo.echo_canceller_ready = lambda: pipeline.echo_learning.ready
        echo.model_heard_echo = pipeline.model_heard_echo
        echo.echo_leaks = lambda: pipeline.echo_learning.withdrawn
        if ptt and self.released_early:  # let go before the session was even created
            self.conversation.release()
        if self.controls.take_outranked():  # another device of the home answers this wake (arbitration)
            self.conversation.end("answered_elsewhere")
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
            self.state.to(self.controls.rest_state())
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
            self.state.to(self.controls.rest_state())

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
            ptt, actions = self.buttons.push_to_talk, self.buttons
            self.button = PushButton(
                b.pin, self._loop, actions.short_press,
                on_long_press=None if ptt else actions.long_press,
                on_release=actions.release if ptt else None,
                pull_up=b.pull_up, bounce_s=b.bounce_s, hold_s=b.hold_s,
            )
        self.leds = build_status_lights(self.settings.leds, level=self.audio.speaker_level)
        if self.leds is not None:
            self.events.subscribe(self.leds.on_event)

