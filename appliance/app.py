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
from typing import TYPE_CHECKING, Any

from .audio.aec import EchoCanceller
from .audio.backends import AudioBackend, backend_for
from .audio.capture import MicStream
from .audio.control import AudioControl
from .audio.devices import AudioDeviceError, find_device, pick_rate, rescan
from .audio.formats import MODEL_RATE
from .audio.pipeline import AudioSink, MicPipeline, WakeDetection, WakeDetector
from .audio.playback import Player
from .audio.reference import ReferenceBuffer
from .conversation.agent import AgentSetup
from .conversation.agents import load_agents
from .conversation.mcp import McpManager, load_servers_file
from .conversation.outcomes import ConversationError, ErrorKind
from .conversation.session import Conversation
from .conversation.tools import BUILTIN_TOOL_NAMES, ToolServices
from .conversation.tools.memory import MemoryBook
from .conversation.tools.timers import TimerBook
from .conversation.transcripts import TranscriptWriter
from .events import (
    ButtonPressed,
    ConversationEnded,
    ErrorRaised,
    EventBus,
    MuteChanged,
    Recovered,
    TriggerSource,
    VolumeChanged,
    Wake,
    WakeIgnored,
    log_subscriber,
)
from .indicators.earcons import Earcons
from .indicators.lights import StatusLights, build_status_lights
from .integrations import start_mqtt
from .redaction import register_secret
from .ringing import TimerRinger
from .settings import Settings
from .state import CONVERSATION_STATES, State, StateMachine
from .store import Store
from .telemetry import Telemetry, health_of
from .triggers.button import PushButton
from .triggers.self_wake import PlayedWakeFilter, played_wake_filter
from .web.server import WebServer

if TYPE_CHECKING:
    from .integrations.arbitration import Arbitration
    from .integrations.bridge import MqttBridge

log = logging.getLogger("appliance")

OUTPUT_STALL_S = 3.0  # an output stream that asks for no audio this long has stalled
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


def volume_gain(percent: int) -> float:
    """Playback gain for a volume in percent: squared, so 50 % sounds about half as loud (-12 dB)."""
    return (max(0, min(100, percent)) / 100) ** 2


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

    def __init__(
        self, settings: Settings, api_key: str, detector: WakeDetector | None, store: Store | None = None
    ) -> None:
        self.settings = settings
        self.api_key = api_key
        register_secret(api_key)
        self.detector = detector
        self.store = store if store is not None else Store(settings.data_dir)
        # Mute is a privacy promise: it survives faults and restarts (kept in the data directory).
        self._muted = bool(self.store.get("muted", False))
        self._volume = int(self.store.get("volume", settings.audio.volume))
        self.events = EventBus()
        self.events.subscribe(log_subscriber)  # first: the log line is written before anything reacts
        self.state = StateMachine(self.events)
        self.telemetry = Telemetry()
        self.events.subscribe(self.telemetry.on_event)
        self.earcons = Earcons(settings.earcons)
        self._setup_agent_layer()
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
        self._control = AudioControl()
        self._audio_totals = {"overruns": 0, "underruns": 0, "dropped_blocks": 0, "output_underflows": 0}
        self._audio_opened_at = 0.0
        # A speaker next to the mic (gate, aec): a twin of the detector scores what the speaker plays, so
        # the wake word ignores the appliance's own voice (triggers/self_wake.py). Made once, kept across reopens.
        self.mqtt: MqttBridge | None = None  # Home Assistant / fleet / arbitration, when a broker is set
        self._played_wakes: PlayedWakeFilter | None = (
            played_wake_filter(detector) if settings.audio.echo != "none" else None
        )

    # -- audio ----------------------------------------------------------------------------------
    def _open_devices(self) -> tuple[MicStream, Player]:
        """Find and start both streams (blocking PortAudio calls: run through `self._control`)."""
        a = self.settings.audio
        backend = self._audio_backend()
        in_dev = find_device(a.input_device, "input", backend)
        out_dev = find_device(a.output_device, "output", backend)
        in_rate = pick_rate(in_dev, "input", channels=a.input_channel + 1, forced=a.input_rate, backend=backend)
        out_rate = pick_rate(out_dev, "output", forced=a.output_rate, backend=backend)
        player = Player(out_dev, out_rate, a.output_block_ms, a.playback_start_ms, a.playback_max_s,
                        backend=backend)
        player.gain = volume_gain(self._volume)
        player.start()
        mic = MicStream(in_dev, in_rate, a.input_channel, a.block_ms, backend=backend)
        try:
            mic.start()
        except BaseException:
            player.stop()
            raise
        return mic, player

    @staticmethod
    def _stop_devices(devices: tuple[MicStream, Player]) -> None:
        for stream in devices:
            stream.stop()

    async def _open_audio(self) -> None:
        mic, player = await self._control.call("opening the audio devices", self._open_devices,
                                               discard=self._stop_devices)
        self.mic, self.player = mic, player
        a = self.settings.audio
        assert self._loop is not None
        self.pipeline = MicPipeline(
            mic,
            self._loop,
            self.detector,
            on_wake=self._on_wake,
            on_stalled=self._on_audio_stalled,
            lookback_ms=self.settings.wake.preroll_lookback_ms,
            publish=self.events.publish,
        )
        if a.echo == "aec":
            # Reference: what the speaker played, read back aligned with the microphone.
            reference = ReferenceBuffer(
                capacity=player.rate * 2, delay=int(player.rate * a.aec_reference_delay_ms / 1000)
            )
            player.reference = reference
            self.pipeline.cancel_echo(EchoCanceller(MODEL_RATE, tail_ms=a.aec_tail_ms), reference, player.rate)
        if self._played_wakes is not None:
            player.played = self._played_wakes.listen_to(player.rate)
            self.pipeline.ignore_played_wakes(self._played_wakes)
        self.pipeline.start()
        self._audio_opened_at = time.monotonic()

    def _audio_backend(self) -> AudioBackend:
        return backend_for(self.settings.audio)

    def _rescan(self) -> None:
        rescan(self._audio_backend())

    def _speaker_level(self) -> float:
        """What the speaker plays now (for the pixels' speaking glow); read from the pixels' thread."""
        player = self.player
        return player.level if player is not None else 0.0

    async def _close_audio(self) -> None:
        """Detach the streams at once (the loop stops using them), then close them off the loop."""
        pipeline, mic, player = self.pipeline, self.mic, self.player
        self.pipeline, self.mic, self.player = None, None, None
        # Prometheus counters only go up: keep what the closed streams counted.
        for name, value in self._stream_stats(mic, player).items():
            self._audio_totals[name] += value
        if pipeline is None and mic is None and player is None:
            return

        def close() -> None:
            if pipeline is not None:
                pipeline.stop()
            for stream in (mic, player):
                if stream is not None:
                    stream.stop()

        try:
            await self._control.call("closing the audio devices", close)
        except AudioDeviceError as exc:
            self.events.publish(ErrorRaised(kind="audio_device", text=f"audio devices not closed cleanly: {exc}"))

    def _check_output(self) -> None:
        """The speaker can vanish too: a stopped output stream, or one that stopped asking for audio,
        is an audio fault like a silent microphone (the conversation ends, the devices reopen)."""
        player = self.player
        if player is None or self._audio_fault is None or self._audio_fault.is_set():
            return
        if not player.active:
            self._on_audio_stalled("output stream stopped")
        elif time.monotonic() - player.last_callback_at > OUTPUT_STALL_S:
            self._on_audio_stalled(f"output device asked for no audio for {OUTPUT_STALL_S:.0f} s")

    def _on_audio_stalled(self, reason: str) -> None:
        self._fault_reason = reason
        if self._audio_fault is not None:
            self._audio_fault.set()
        if self.conversation is not None:
            self.conversation.fail(ConversationError("audio_device", reason))

    @property
    def audio_ok(self) -> bool:
        return bool(self.mic and self.mic.active and self.player and self.player.active)

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
        self.agents = AgentSetup(
            s, load_agents(s, set(BUILTIN_TOOL_NAMES)),
            ToolServices(s, timers=self.timers, memory=self.memory, volume=self), self.mcp,
        )
        self.ringer = TimerRinger(
            self.timers, self.state, self.events,
            play=lambda: self.earcons.play("timer", self.player),
            ready=lambda: self.audio_ok, rest_state=self._rest_state, ring_s=s.agent.timer_ring_s,
        )
        self.transcripts: TranscriptWriter | None = None
        if s.transcripts.enabled:
            self.transcripts = TranscriptWriter(s.data_dir, s.transcripts.retention_days, s.transcripts.retention_mb)
            self.events.subscribe(self.transcripts.on_event)

    # -- mute and volume (persisted) ------------------------------------------------------------
    @property
    def muted(self) -> bool:
        return self._muted

    def set_muted(self, muted: bool, reason: str = "api") -> None:
        """Mute: the wake word is ignored (a conversation in progress ends). Kept across restarts."""
        if muted == self._muted:
            return
        self._muted = muted
        self.store.put("muted", muted)
        self.events.publish(MuteChanged(muted=muted, reason=reason))
        current = self.state.state
        if muted:
            if current == State.IDLE:
                self.state.to(State.MUTED, reason=reason)
            elif self.conversation is not None:
                self.conversation.end("button" if reason == "button" else "api")
        elif current == State.MUTED:
            self.state.to(State.IDLE, reason="unmuted")

    @property
    def volume(self) -> int:
        return self._volume

    def set_volume(self, percent: int) -> int:
        """Playback volume of answers and earcons, 0–100; kept across restarts. Returns the new value."""
        volume = max(0, min(100, int(percent)))
        changed = volume != self._volume
        self._volume = volume
        self.store.put("volume", volume)
        if changed:
            self.events.publish(VolumeChanged(volume=volume))
        if self.player is not None:
            self.player.gain = volume_gain(self._volume)
        return self._volume

    def _rest_state(self) -> State:
        """Where the appliance rests between conversations: idle, or muted when mute is on."""
        return State.MUTED if self._muted else State.IDLE

    # -- commands (device API) ------------------------------------------------------------------
    def start_conversation(self, source: TriggerSource = "api") -> bool:
        """As a button press when idle: start a conversation. False when it cannot start now."""
        if self.state.state != State.IDLE or self.pipeline is None:
            return False
        self._trigger(Wake(source=source))
        return True

    def stop_conversation(self) -> bool:
        """End the conversation in progress. False when there is none."""
        if self.conversation is None:
            return False
        self.conversation.end("api")
        return True

    # -- triggers -------------------------------------------------------------------------------
    def _trigger(self, event: Wake) -> None:
        if self.state.state != State.IDLE:
            return
        source = event.source
        if self.pipeline is None:  # the audio is being reopened (a fault was just seen): nothing to hear with
            self.events.publish(WakeIgnored(reason="audio_reopening", source=source))
            return
        self.events.publish(event)
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
        if current == State.RINGING:
            self.ringer.dismiss("wakeword")
            return
        if current == State.MUTED:
            return
        if current == State.IDLE:
            arbitration = self.mqtt.arbitration if self.mqtt is not None else None
            if arbitration is None:
                self._trigger(wake_event(detection))
            else:  # the devices of one home answer once (a button press is never arbitrated)
                self._spawn(self._answer_if_chosen(arbitration, wake_event(detection)))
        elif current in (State.SPEAKING, State.THINKING) and self.conversation is not None:
            self.events.publish(wake_event(detection, barge_in=True))
            self._spawn(self.conversation.barge_in())

    async def _answer_if_chosen(self, arbitration: Arbitration, event: Wake) -> None:
        if await arbitration.should_answer(event.score or 0.0):
            self._trigger(event)
        elif self.leds is not None:  # a short dim light: heard, and another device of the home answers
            self.leds.play("answered_elsewhere")
            await asyncio.sleep(ANSWERED_ELSEWHERE_S)
            self.leds.play(None)

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
        if current == State.RINGING:
            self.ringer.dismiss("button")
        elif current == State.IDLE:
            self._trigger(Wake(source="button"))
        elif current in CONVERSATION_STATES and self.conversation is not None:
            if self.push_to_talk:
                self.events.publish(ButtonPressed(action="talk"))
                if self.conversation.talk():  # the turn is open before anything else runs
                    self._spawn(self.conversation.barge_in())
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
        if current == State.RINGING:
            self.ringer.dismiss("button")
        elif current in (State.IDLE, State.MUTED):
            self.set_muted(not self._muted, reason="button")
        elif current in CONVERSATION_STATES and self.conversation is not None:
            self.conversation.end("button")

    # -- main loop ------------------------------------------------------------------------------
    @staticmethod
    def _stream_stats(mic: MicStream | None, player: Player | None) -> dict[str, int]:
        return {
            "overruns": mic.stats.overflows if mic is not None else 0,
            "dropped_blocks": mic.stats.dropped_blocks if mic is not None else 0,
            "underruns": player.stats.underruns if player is not None else 0,
            "output_underflows": player.stats.device_underflows if player is not None else 0,
        }

    def audio_stats(self) -> dict[str, int]:
        """Audio counters over the process's life (streams that were closed included)."""
        current = self._stream_stats(self.mic, self.player)
        return {name: self._audio_totals[name] + current[name] for name in current}

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
        if self._muted:
            self.state.to(State.MUTED, reason="restored")
        self.telemetry.bind(self.audio_stats, self.health)
        self.mqtt = start_mqtt(self)
        web: WebServer | None = None
        if self.settings.health.enabled:
            web = WebServer(self.settings, self.telemetry, self)
            try:
                await web.start()
            except OSError as exc:
                self.events.publish(ErrorRaised(
                    kind="health_listen", text=f"health endpoint not started on {self.settings.health.address}: {exc}"
                ))
        heartbeat = asyncio.create_task(self._heartbeat())
        ringer = asyncio.create_task(self.ringer.run(), name="timers")
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
                        await self._control.call("rescanning the audio devices", self._rescan)
                    if not await _unless_stopped(self._open_audio(), stop):
                        break
                except AudioDeviceError as exc:
                    await self._close_audio()
                    failed_before = True
                    await self._error("audio_device", str(exc), backoff, stop, then_idle=False)
                    backoff = self._next_backoff(backoff)
                    continue
                if failed_before:
                    self.events.publish(Recovered())
                    self.state.to(self._rest_state(), reason="recovered")
                failed_before = False
                self._audio_fault.clear()
                await self._serve(stop)
                ran_for = time.monotonic() - self._audio_opened_at
                await self._close_audio()
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
            heartbeat.cancel()
            ringer.cancel()
            if self.mcp is not None:
                await self.mcp.close()
            gc.unfreeze()
            if web is not None:
                await web.close()
            await self._close_audio()
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
        ptt = self.push_to_talk and trigger.source == "button"
        self.conversation = Conversation(
            self.settings, self.api_key, self.player, sink, self.state, push_to_talk=ptt, agents=self.agents
        )
        pipeline = self.pipeline
        self.conversation.echo_canceller_ready = lambda: pipeline.echo_learning.ready
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
            self.state.to(self._rest_state())
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
            self.state.to(self._rest_state())

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
