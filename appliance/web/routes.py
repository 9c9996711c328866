"""The Starlette app: `/healthz` and `/metrics` (open, for monitoring), and, with a device, the page,
its static files, `/api/events` (WebSocket), `/api/login`, `/api/auth` and `/api/client-secret`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..telemetry import Telemetry
from ..version import revision
from . import auth
from .body import BodyTooLarge, BodyTooSlow, read_body, refused_body
from .client_secret import ClientSecretError, create_client_secret
from .commands import MAX_COMMAND_BYTES, run_command
from .device import Device
from .hub import Client, EventHub
from .throttle import FailureThrottle

STATIC = Path(str(resources.files("appliance").joinpath("web", "static")))
MAX_LOGIN_BYTES = 1024
MAX_CLIENT_SECRET_BYTES = 1024  # it takes no body; a small JSON one is tolerated
_BODY_REASONS = {BodyTooLarge: "body_too_large", BodyTooSlow: "body_too_slow"}
# A stalled client's close handshake is not waited for longer than this.
CLOSE_WAIT_S = 2.0


def version() -> str:
    try:
        return metadata.version("appliance")
    except metadata.PackageNotFoundError:
        return "unknown"


def health_routes(telemetry: Telemetry) -> list[BaseRoute]:
    async def healthz(_request: Request) -> Response:
        ok, reason = telemetry.health()
        return JSONResponse({"ok": ok, "reason": reason}, status_code=200 if ok else 503)

    async def metrics(_request: Request) -> Response:
        return Response(telemetry.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/metrics", metrics)]


class DeviceApi:
    """The page and the device API for one running appliance."""

    def __init__(self, device: Device, telemetry: Telemetry) -> None:
        self.device = device
        self.settings = device.settings
        self.telemetry = telemetry
        self.hub = EventHub(self.settings.web.client_queue, on_clients=telemetry.web_clients.set)
        self.throttle = FailureThrottle()
        self._unsubscribe = device.events.subscribe(self.hub.on_event)

    def close(self) -> None:
        self._unsubscribe()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.page),
            Route("/api/auth", self.auth_check),
            Route("/api/login", self.login, methods=["POST"]),
            Route("/api/client-secret", self.client_secret, methods=["POST"]),
            WebSocketRoute("/api/events", self.events),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    def _refusal(self, request: Request | WebSocket) -> Response | None:
        """None when the request may go on, else what it gets: 401 (no or a wrong token, another
        origin, a non-loopback Host), or 429 while its client is paying for wrong tokens."""
        token = self.settings.web.token
        if not auth.origin_allowed(request.headers) or not auth.host_allowed(request.headers, token):
            return PlainTextResponse("token required\n", status_code=401)
        if token is None:
            return None
        presented = auth.presented_token(request.headers, request.cookies)
        if presented is None:
            return PlainTextResponse("token required\n", status_code=401)
        return self._check_token(request, presented)

    def _check_token(self, request: Request | WebSocket, presented: str) -> Response | None:
        client = request.client.host if request.client else None
        wait = self.throttle.retry_after(client)
        if wait:
            self.telemetry.web_refused.labels("login_throttled").inc()
            return PlainTextResponse("too many wrong tokens; try again later\n", status_code=429,
                                     headers={"Retry-After": str(wait)})
        if not auth.token_matches(presented, self.settings.web.token):
            self.throttle.failed(client)
            self.telemetry.web_refused.labels("wrong_token").inc()
            return PlainTextResponse("wrong token\n", status_code=401)
        self.throttle.succeeded(client)
        return None

    def hello(self) -> dict[str, Any]:
        s = self.settings
        return {
            "event": "hello",
            "state": self.device.state.state.value,
            "muted": self.device.muted,
            "volume": self.device.volume,
            "version": version(),
            "revision": revision(),
            "wake_models": list(s.wake.models),
            "realtime_model": s.realtime.model,
            "voice": s.realtime.voice,
            "input_device": None if s.audio.input_device is None else str(s.audio.input_device),
            "output_device": None if s.audio.output_device is None else str(s.audio.output_device),
            "browser_talk": s.web.browser_talk,
            "recent": list(self.hub.recent),
        }

    async def page(self, _request: Request) -> Response:
        # The page holds no secret: it asks for the token when the API answers 401.
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def auth_check(self, request: Request) -> Response:
        return self._refusal(request) or Response(status_code=204)

    async def login(self, request: Request) -> Response:
        """Exchange the token typed into the page for an HttpOnly cookie."""
        token = self.settings.web.token
        if not auth.origin_allowed(request.headers) or not auth.host_allowed(request.headers, token):
            return PlainTextResponse("forbidden\n", status_code=403)
        try:
            body = await read_body(request, MAX_LOGIN_BYTES)
        except (BodyTooLarge, BodyTooSlow) as exc:
            self.telemetry.web_refused.labels(_BODY_REASONS[type(exc)]).inc()
            return refused_body(exc, MAX_LOGIN_BYTES)
        presented = _login_token(body)
        if presented is None:
            return PlainTextResponse('expected {"token": "..."} as UTF-8 JSON\n', status_code=400)
        if token is not None and (refusal := self._check_token(request, presented)) is not None:
            return refusal
        response = Response(status_code=204)
        response.set_cookie(auth.COOKIE, presented, max_age=365 * 86400, httponly=True, samesite="strict", path="/")
        return response

    async def client_secret(self, request: Request) -> Response:
        try:
            await read_body(request, MAX_CLIENT_SECRET_BYTES)
        except (BodyTooLarge, BodyTooSlow) as exc:
            self.telemetry.web_refused.labels(_BODY_REASONS[type(exc)]).inc()
            return refused_body(exc, MAX_CLIENT_SECRET_BYTES)
        if (refusal := self._refusal(request)) is not None:
            return refusal
        if not self.settings.web.browser_talk:
            return JSONResponse({"error": "browser talk is off (APPLIANCE_WEB__BROWSER_TALK)"}, status_code=404)
        try:
            secret = await create_client_secret(self.settings, self.device.api_key)
        except ClientSecretError as exc:
            return JSONResponse({"error": str(exc)}, status_code=502)
        return JSONResponse(secret, headers={"Cache-Control": "no-store"})

    async def events(self, websocket: WebSocket) -> None:
        if (refusal := self._refusal(websocket)) is not None:
            await websocket.send_denial_response(refusal)
            return
        if len(self.hub.clients) >= self.settings.web.max_clients:
            self.telemetry.web_refused.labels("too_many_clients").inc()
            await websocket.send_denial_response(PlainTextResponse("too many clients\n", status_code=503))
            return
        await websocket.accept()
        client = self.hub.join()
        client.offer(json.dumps(self.hello(), default=str))
        tasks = {
            asyncio.ensure_future(self._send(websocket, client)),
            asyncio.ensure_future(self._receive(websocket, client)),
        }
        overflow = asyncio.ensure_future(client.overflowed.wait())
        try:
            await asyncio.wait({*tasks, overflow}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*tasks, overflow):
                task.cancel()
            self.hub.leave(client)
        if client.overflowed.is_set():
            self.telemetry.web_clients_dropped.inc()
            # Too slow to keep up: closed (code 1013, try again later); it may reconnect.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code=1013, reason="too slow"), CLOSE_WAIT_S)

    async def _send(self, websocket: WebSocket, client: Client) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                await websocket.send_text(await client.queue.get())

    async def _receive(self, websocket: WebSocket, client: Client) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"")[:MAX_COMMAND_BYTES + 1].decode(errors="replace")
                reply, for_all = run_command(self.device, text)
                client.offer(json.dumps(reply))
                if for_all is not None:
                    self.hub.broadcast(for_all)


def _login_token(body: bytes) -> str | None:
    """The token of a well-formed `{"token": "..."}` (UTF-8 JSON, a non-empty string that is valid
    Unicode), else None."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    token = message.get("token") if isinstance(message, dict) else None
    if not isinstance(token, str) or not token:
        return None
    try:
        token.encode("utf-8")  # a lone surrogate ("\\ud800") is valid JSON but no text
    except UnicodeEncodeError:
        return None
    return token


def build_app(telemetry: Telemetry, api: DeviceApi | None) -> Starlette:
    routes = health_routes(telemetry)
    if api is not None:
        routes += api.routes()
    return Starlette(routes=routes)
