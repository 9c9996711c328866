"""Who gets a connection and which requests are served when the listener is busy.

`/healthz` and `/metrics` must answer whatever the page and API clients do (an orchestrator
restarts the device when they fail), so the listener's bounds are not one shared cap:

- one client (an IPv4 address, or an IPv6 /64, as `throttle.client_key` says) holds at most
  `PER_CLIENT_CONNECTIONS` connections; more are refused as they are accepted;
- all clients together hold at most `MAX_CONNECTIONS` (far above what the page and API may use),
  so memory and file descriptors stay bounded;
- page and API requests in progress, WebSocket clients included, are capped at `api_limit`; past it
  they get 503, while health and metrics requests are never counted or refused by it.

Refusals are counted in `appliance_web_refused_total{reason}`; the log gets at most one summary
line a minute, so a flood of refusals is never a flood of log lines.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..telemetry import Telemetry

log = logging.getLogger("appliance.web")

PER_CLIENT_CONNECTIONS = 16
MAX_CONNECTIONS = 256
OPEN_PATHS = frozenset({"/healthz", "/metrics"})  # monitoring: never refused for being busy
SUMMARY_EVERY_S = 60.0

REFUSED_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")


class Admission:
    def __init__(self, telemetry: Telemetry, api_limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.telemetry = telemetry
        self.api_limit = api_limit
        self.per_client: collections.Counter[str] = collections.Counter()
        self.connections = 0
        self.api_in_use = 0
        self._clock = clock
        self._unlogged: collections.Counter[str] = collections.Counter()
        self._logged_at: float | None = None

    def connect(self, client: str) -> bool:
        """A new connection from `client`: False when it must be refused (and it is counted)."""
        if self.per_client[client] >= PER_CLIENT_CONNECTIONS:
            self.refused("per_client")
            return False
        if self.connections >= MAX_CONNECTIONS:
            self.refused("server_full")
            return False
        self.per_client[client] += 1
        self.connections += 1
        return True

    def disconnect(self, client: str) -> None:
        self.connections -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]

    def refused(self, reason: str) -> None:
        self.telemetry.web_refused.labels(reason).inc()
        self._unlogged[reason] += 1
        now = self._clock()
        if self._logged_at is None or now - self._logged_at >= SUMMARY_EVERY_S:
            counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(self._unlogged.items()))
            log.warning("web requests refused (%s); further refusals this minute are only counted in "
                        "appliance_web_refused_total", counts,
                        extra={"event": "web_refused", "counts": dict(self._unlogged)})
            self._unlogged.clear()
            self._logged_at = now

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The ASGI app with the page/API cap applied in front of it."""

        async def admitted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket") or scope.get("path") in OPEN_PATHS:
                await app(scope, receive, send)
                return
            if self.api_in_use >= self.api_limit:
                self.refused("api_busy")
                await _busy(scope, receive, send)
                return
            self.api_in_use += 1
            try:
                await app(scope, receive, send)
            finally:
                self.api_in_use -= 1

        return admitted


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    body = b"busy, try again later\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"5"), (b"connection", b"close")]
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
