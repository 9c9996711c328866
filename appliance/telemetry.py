"""Prometheus metrics and the health verdict; `appliance.web` serves them on `/metrics` and `/healthz`.

`/metrics`: Prometheus text format. `/healthz`: 200 when the audio streams are open and the main
loop ticked recently, else 503; the body says why. Served from the asyncio loop itself (uvicorn runs
in it), so a stuck loop shows as a failing health check rather than a cheerful one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, get_args

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from .announcements.events import AnnouncementChanged
from .conversation.echo_guard import EchoGating, EchoGatingReason
from .events import (
    ApplianceEvent,
    ConversationEnded,
    EchoLeaked,
    EchoRelearning,
    ErrorRaised,
    MicBlockFailed,
    StateChanged,
    Wake,
    WakeIgnored,
    WakeLearned,
)
from .state import State
from .version import build_info

if TYPE_CHECKING:  # the module itself is imported by `MqttMetrics`, made only when a broker is configured
    from .integrations.mqtt_events import BrokerConnected, BrokerLost, RejectReason, WakeArbitrated

log = logging.getLogger("appliance.telemetry")


class _AudioStatsCollector(Collector):
    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        stats = self._read()
        for name, help_text in (
            ("overruns", "Capture overflows reported by the input device"),
            ("underruns", "Playback buffer ran dry while an answer was streaming"),
            ("dropped_blocks", "Microphone blocks dropped because a consumer fell behind"),
            ("output_underflows", "Output device ran dry before the playback callback filled it (xruns)"),
        ):
            yield CounterMetricFamily(f"appliance_audio_{name}", help_text, value=stats.get(name, 0))


class MqttMetrics:
    """The MQTT integration's metrics, made by `Telemetry.watch_mqtt` when a broker is configured.

    Absent without a broker rather than a `connected` of 0: a fleet's alert on
    `appliance_mqtt_connected == 0` then fires only for devices that should be connected. With one,
    the gauge is 0 from the start, until the first connection (a broker down at boot shows at once).
    """

    def __init__(self, registry: CollectorRegistry, *, arbitration: bool) -> None:
        # Here, not at the top: without a broker nothing of the integrations is imported, and
        # mqtt_events never imports the client library (aiomqtt, paho) in any case.
        from .integrations import mqtt_events as ev

        self.connected = Gauge("appliance_mqtt_connected", "1 while connected to the MQTT broker, else 0",
                               registry=registry)
        self.disconnects = Counter("appliance_mqtt_disconnects", "MQTT broker connections lost after being "
                                   "connected (once per outage, however many retries)", registry=registry)
        self.rejected = Counter("appliance_mqtt_rejected", "Messages on MQTT command topics ignored, by reason",
                                ["reason"], registry=registry)
        self.arbitrations = Counter("appliance_wake_arbitrations", "Wakes arbitrated with the other devices of "
                                    "the home, by outcome", ["outcome"], registry=registry)
        for reason in get_args(ev.RejectReason):  # fixed sets: each shows from 0, so rate() sees the first
            self.rejected.labels(reason)
        if arbitration:
            for outcome in get_args(ev.ArbitrationOutcome):
                self.arbitrations.labels(outcome)
        self._up = False
        self._handlers: dict[type[ApplianceEvent], Callable[[Any], None]] = {
            ev.BrokerConnected: self._on_connected, ev.BrokerLost: self._on_lost,
            ev.WakeArbitrated: self._on_arbitrated,
        }

    def on_event(self, event: ApplianceEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def reject(self, reason: RejectReason) -> None:
        """The bridge's hook for each message it ignores (every one: its log lines are rate limited)."""
        self.rejected.labels(reason).inc()

    def _on_connected(self, event: BrokerConnected) -> None:
        self._up = True
        self.connected.set(1)

    def _on_lost(self, event: BrokerLost) -> None:
        # BrokerLost also reports a first connection that failed: that is no disconnect.
        if self._up:
            self.disconnects.inc()
        self._up = False
        self.connected.set(0)

    def _on_arbitrated(self, event: WakeArbitrated) -> None:
        self.arbitrations.labels(event.outcome()).inc()


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # appliance_build_info{version, revision, python} 1: what each device of a fleet runs.
        Info("appliance_build", "Version, git revision and Python of the running appliance",
             registry=self.registry).info(build_info())
        self.conversations = Counter(
            "appliance_conversations", "Conversations by how they ended", ["reason"], registry=self.registry
        )
        self.wakes = Counter("appliance_wakes", "Wake events by source", ["source"], registry=self.registry)
        self.errors = Counter("appliance_errors", "Errors by kind", ["kind"], registry=self.registry)
        self.wakes_learned = Counter("appliance_wakes_learned", "Probable wake-word mistakes learned, by kind",
                                     ["kind"], registry=self.registry)
        self.wakes_ignored = Counter("appliance_wakes_ignored", "Wakes not acted on, by reason (played_audio: "
                                     "the speaker's own audio)", ["reason"], registry=self.registry)
        self.mic_block_failures = Counter("appliance_mic_block_failures", "Spells of failing microphone blocks",
                                          registry=self.registry)
        self.aec_relearns = Counter("appliance_aec_relearns", "Echo canceller re-learnings after an audio xrun",
                                    registry=self.registry)
        # How often a device hears itself: the trusted canceller caught leaking the answer's echo
        # (muted while it re-learns), and conversations that gate for the rest because of an echo.
        self.aec_leaks = Counter("appliance_aec_leaks", "Trusted echo canceller caught leaking the agent's echo",
                                 registry=self.registry)
        self.aec_gating = Counter("appliance_aec_gating", "Conversations gating the microphone for the rest "
                                  "because of an echo, by reason", ["reason"], registry=self.registry)
        for reason in get_args(EchoGatingReason):  # a fixed set: each shows from 0, so rate() sees the first
            self.aec_gating.labels(reason)
        self.announcements = Counter("appliance_announcements", "Announcements by what became of them (queued, "
                                     "started, done, dismissed, failed, expired, refused)", ["action", "source"],
                                     registry=self.registry)
        self.state = Enum(
            "appliance_state", "Current appliance state", states=[s.value for s in State], registry=self.registry
        )
        self.connect_seconds = Histogram(
            "appliance_session_connect_seconds",
            "Time from wake to an open realtime session",
            buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10),
            registry=self.registry,
        )
        self.web_clients = Gauge("appliance_web_clients", "Device API WebSocket clients connected",
                                 registry=self.registry)
        self.web_clients_dropped = Counter(
            "appliance_web_clients_dropped", "Device API clients closed for reading too slowly", registry=self.registry
        )
        # Refused web requests and connections, counted here rather than logged one line each (a flood
        # of them would be a log flood): per_client, server_full, api_busy, too_many_clients,
        # body_too_large, body_too_slow, wrong_token, login_throttled, bad_request.
        self.web_refused = Counter("appliance_web_refused", "Web requests and connections refused, by reason",
                                   ["reason"], registry=self.registry)
        self._audio_stats: Callable[[], dict[str, int]] = dict
        self.registry.register(_AudioStatsCollector(lambda: self._audio_stats()))
        self._health: Callable[[], tuple[bool, str]] = lambda: (False, "starting")
        self.mqtt: MqttMetrics | None = None

    def watch_mqtt(self, *, arbitration: bool) -> MqttMetrics:
        """A broker is configured: the MQTT metrics from now on (once; a second call returns the same)."""
        if self.mqtt is None:
            self.mqtt = MqttMetrics(self.registry, arbitration=arbitration)
        return self.mqtt

    def bind(self, audio_stats: Callable[[], dict[str, int]], health: Callable[[], tuple[bool, str]]) -> None:
        self._audio_stats = audio_stats
        self._health = health

    def on_event(self, event: ApplianceEvent) -> None:
        """The metrics' subscription to the event stream."""
        if isinstance(event, StateChanged):
            self.state.state(event.state)
        elif isinstance(event, Wake):
            self.wakes.labels(event.source).inc()
        elif isinstance(event, ConversationEnded):
            self.conversations.labels(event.reason).inc()
            self.connect_seconds.observe(event.wake_to_open_ms / 1000)
        elif isinstance(event, ErrorRaised):
            self.errors.labels(event.kind).inc()
        elif isinstance(event, WakeIgnored):
            self.wakes_ignored.labels(event.reason).inc()
        elif isinstance(event, WakeLearned):
            self.wakes_learned.labels(event.kind).inc()
        elif isinstance(event, MicBlockFailed):
            self.mic_block_failures.inc()
        elif isinstance(event, EchoRelearning):
            self.aec_relearns.inc()
        elif isinstance(event, EchoLeaked):
            self.aec_leaks.inc()
        elif isinstance(event, EchoGating):
            self.aec_gating.labels(event.reason).inc()
        elif isinstance(event, AnnouncementChanged):
            self.announcements.labels(event.action, event.source).inc(event.count or 1)
        elif self.mqtt is not None:
            self.mqtt.on_event(event)

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    def health(self) -> tuple[bool, str]:
        return self._health()


def health_of(
    audio_ok: bool,
    last_tick: float,
    stale_after_s: float,
    *,
    pipeline_tick: float | None = None,
    pipeline_alive: bool = True,
) -> tuple[bool, str]:
    """Healthy when the streams are open, the main loop ticks and the microphone worker ticks."""
    now = time.monotonic()
    age = now - last_tick
    if not audio_ok:
        return False, "audio streams are not open"
    if age > stale_after_s:
        return False, f"main loop last ticked {age:.1f} s ago"
    if not pipeline_alive:
        return False, "microphone worker is not running"
    if pipeline_tick is not None and now - pipeline_tick > stale_after_s:
        return False, f"microphone worker last ticked {now - pipeline_tick:.1f} s ago"
    return True, "ok"
