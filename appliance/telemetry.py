"""Prometheus metrics and the health verdict; `appliance.web` serves them on `/metrics` and `/healthz`.

`/metrics`: Prometheus text format. `/healthz`: 200 when the audio streams are open and the main
loop ticked recently, else 503; the body says why. Served from the asyncio loop itself (uvicorn runs
in it), so a stuck loop shows as a failing health check rather than a cheerful one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import get_args

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
