"""uvicorn inside the appliance's own event loop, with explicit bounds.

A slow or hostile client can hold no more than its share: headers must arrive within
`HEADER_TIMEOUT_S`, an incomplete request may not exceed `MAX_REQUEST_HEAD_BYTES`, idle keep-alive
connections close after `KEEP_ALIVE_S`, one client holds a few connections and all of them a bounded
number (`admission.py`), at most `MAX_API_REQUESTS` page/API requests (plus the WebSocket clients,
`web.max_clients`) are served at once (more get 503) while `/healthz` and `/metrics` are always
served, and WebSocket messages are capped and pinged. Refusals are counted, not logged one by one.
uvicorn installs no signal handlers here: the appliance owns SIGTERM and stops the server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from typing import cast

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ..redaction import register_secret
from ..settings import Settings
from ..telemetry import Telemetry
from .admission import REFUSED_RESPONSE, Admission
from .device import Device
from .routes import DeviceApi, build_app
from .throttle import client_key

log = logging.getLogger("appliance.web")

HEADER_TIMEOUT_S = 5.0
MAX_REQUEST_HEAD_BYTES = 16 * 1024
KEEP_ALIVE_S = 5
MAX_API_REQUESTS = 64
WS_MAX_MESSAGE_BYTES = 4096
WS_PING_S = 20.0
SHUTDOWN_GRACE_S = 2
# A connection closed while its client is still sending (a refused body) first only stops sending,
# and drops what comes for this long: closing at once would reset it and lose the 413 on its way.
LINGER_S = 2.0


# uvicorn's per-request warnings: each one a client can cause at will, so counted instead of logged.
_PER_REQUEST_WARNINGS = {
    "Invalid HTTP request received.": "bad_request",
    "Unsupported upgrade request.": "bad_request",
}


class _CountedWarnings(logging.Filter):
    def __init__(self, admission: Admission) -> None:
        super().__init__()
        self.admission = admission

    def filter(self, record: logging.LogRecord) -> bool:
        reason = _PER_REQUEST_WARNINGS.get(str(record.msg))
        if reason is None:
            return True
        self.admission.refused(reason)
        return False


class _AccountedWebSocket(WebSocketsSansIOProtocol):
    """The WebSocket protocol an upgraded connection continues in; it gives the connection's
    admission back when it ends (the HTTP protocol that took it never hears of its loss)."""

    release: Callable[[], None] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            if self.release is not None:
                self.release()
                self.release = None


class _LingeringTransport:
    """The transport as a request's response cycle sees it: its close() lingers (half-close, drain,
    then close) when the client has not finished sending its request."""

    def __init__(self, protocol: _BoundedH11Protocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)

    def close(self) -> None:
        if self._protocol.conn.their_state is not h11.SEND_BODY or not self._transport.can_write_eof():
            self._transport.close()
            return
        self._protocol.draining = True
        try:
            self._transport.write_eof()
        except OSError:  # the client is already gone (reset)
            self._transport.close()
            return
        self._protocol.loop.call_later(LINGER_S, self._transport.close)


class _BoundedH11Protocol(H11Protocol):
    """h11 with a deadline for each request head (uvicorn alone lets a client trickle header lines
    for ever: its keep-alive timer stops at the first byte of a request), and connections admitted
    per client (`Admission`)."""

    admission: Admission  # set on the subclass `WebServer` makes
    _head_deadline: asyncio.TimerHandle | None = None
    _cycle_before: object = None
    _admitted_as: str | None = None
    draining = False  # the response is out and the connection closing: what arrives is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = client_key(self.client[0] if self.client else None)  # an IPv6 client is its /64
        if not self.admission.connect(peer):
            transport.write(REFUSED_RESPONSE)
            transport.close()
            return
        self._admitted_as = peer
        self._start_head_deadline()

    def _release(self) -> None:
        if self._admitted_as is not None:
            self.admission.disconnect(self._admitted_as)
            self._admitted_as = None

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        super().handle_websocket_upgrade(event)
        protocol = self.transport.get_protocol()
        if isinstance(protocol, _AccountedWebSocket) and self._admitted_as is not None:
            protocol.release = self._release  # the WebSocket holds this connection's admission now
        else:
            self._release()

    def _start_head_deadline(self) -> None:
        self._cycle_before = self.cycle
        self._head_deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        # Still no new request, and not upgraded to a WebSocket (which owns the transport now).
        if self.cycle is self._cycle_before and self.transport.get_protocol() is self:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if (self._admitted_as is None or self.draining) and self.transport.get_protocol() is self:
            return  # refused at connect, or closing: nothing it sends is read
        if self._head_deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._start_head_deadline()
        super().data_received(data)
        if self.cycle is not None and not isinstance(self.cycle.transport, _LingeringTransport):
            self.cycle.transport = cast(asyncio.Transport, _LingeringTransport(self))
        if self._head_deadline is not None and self.cycle is not self._cycle_before:
            self._head_deadline.cancel()
            self._head_deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        self._release()
        super().connection_lost(exc)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the appliance handles SIGTERM/SIGINT


def _listen(address: str) -> socket.socket:
    """Bind here, so a taken port is an OSError the appliance reports (uvicorn would exit)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class WebServer:
    """`/healthz` and `/metrics`, and (with a device and `web.enabled`) the page and API."""

    def __init__(self, settings: Settings, telemetry: Telemetry, device: Device | None = None) -> None:
        self.settings = settings
        if settings.web.token is not None:
            register_secret(settings.web.token.get_secret_value())  # masked in every log line
        self.api = DeviceApi(device, telemetry) if device is not None and settings.web.enabled else None
        # WebSocket clients hold a connection each (at most web.max_clients of them).
        self.admission = Admission(telemetry, api_limit=MAX_API_REQUESTS + settings.web.max_clients)
        self._warnings = _CountedWarnings(self.admission)
        app = self.admission.middleware(build_app(telemetry, self.api))
        protocol = type("AdmittedH11Protocol", (_BoundedH11Protocol,), {"admission": self.admission})
        config = uvicorn.Config(
            app,
            http=protocol,
            ws=_AccountedWebSocket,
            lifespan="off",
            log_config=None,
            access_log=False,  # request lines would be logged; nothing here needs them
            server_header=False,
            proxy_headers=False,
            limit_concurrency=None,  # one cap for all would let page/API clients starve /healthz
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
            ws_max_size=WS_MAX_MESSAGE_BYTES,
            ws_max_queue=8,
            ws_ping_interval=WS_PING_S,
            ws_ping_timeout=WS_PING_S,
            ws_per_message_deflate=False,
        )
        self._server = _Server(config)
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        """Listen on `health.address`; raises OSError when the address cannot be bound."""
        # uvicorn's WebSocket protocol logs handshake headers (cookies, bearer tokens) and frames at
        # DEBUG on "uvicorn.error": never let the appliance's DEBUG level reach them. Its INFO lines
        # ("Started server process") only repeat ours.
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("uvicorn.error").addFilter(self._warnings)
        address = self.settings.health.address
        self._socket = _listen(address)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()
        bound = f"{address.rpartition(':')[0]}:{self.port}"
        page = " and the device page at /" if self.api is not None else ""
        log.info("health and metrics on http://%s/healthz and /metrics%s", bound, page,
                 extra={"event": "http_listen", "address": bound, "port": self.port, "page": self.api is not None})

    async def close(self) -> None:
        logging.getLogger("uvicorn.error").removeFilter(self._warnings)
        if self.api is not None:
            self.api.close()
        if self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        if self._socket is not None:
            self._socket.close()
