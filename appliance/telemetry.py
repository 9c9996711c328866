"""Prometheus metrics and the health endpoint, served on one small HTTP listener.

`/metrics`: Prometheus text format. `/healthz`: 200 when the audio streams are open and the main
loop ticked recently, else 503; the body says why. Served from the asyncio loop itself, so a
stuck loop shows as a failing health check rather than a cheerful one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Enum, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from .events import ApplianceEvent, ConversationEnded, ErrorRaised, StateChanged, Wake
from .state import State

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
        ):
            yield CounterMetricFamily(f"appliance_audio_{name}", help_text, value=stats.get(name, 0))


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.conversations = Counter(
            "appliance_conversations", "Conversations by how they ended", ["reason"], registry=self.registry
        )
        self.wakes = Counter("appliance_wakes", "Wake events by source", ["source"], registry=self.registry)
        self.errors = Counter("appliance_errors", "Errors by kind", ["kind"], registry=self.registry)
        self.state = Enum(
            "appliance_state", "Current appliance state", states=[s.value for s in State], registry=self.registry
        )
        self.connect_seconds = Histogram(
            "appliance_session_connect_seconds",
            "Time from wake to an open realtime session",
            buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10),
            registry=self.registry,
        )
        self._audio_stats: Callable[[], dict[str, int]] = dict
        self.registry.register(_AudioStatsCollector(lambda: self._audio_stats()))
        self._health: Callable[[], tuple[bool, str]] = lambda: (False, "starting")
        self._server: asyncio.base_events.Server | None = None

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

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._server = await asyncio.start_server(self._handle, host.strip("[]"), int(port))
        log.info("health and metrics on http://%s/healthz and /metrics", address,
                 extra={"event": "http_listen", "address": address})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            if parts[:1] != ["GET"]:
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, self.metrics_text()
            elif path == "/healthz":
                ok, reason = self._health()
                status = "200 OK" if ok else "503 Service Unavailable"
                ctype, body = "application/json", json.dumps({"ok": ok, "reason": reason}).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"try /healthz or /metrics\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeError):
            pass
        finally:
            writer.close()


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
