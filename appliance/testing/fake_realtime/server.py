"""The fake server itself: its lifecycle, the controls a test drives, and the WebSocket plumbing
(handshake, key checks, one ``Connection`` per client). Options, recordings and the validated
send are ``FakeServerCore``'s, below every other module of the package."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from .auth import (
    CLIENT_SECRETS_PATH,
    EPHEMERAL_PREFIX,
    REALTIME_SUBPROTOCOL,
    ClientSecret,
    Credentials,
    error_body,
    invalid_key_body,
    presented_credentials,
    secret_session,
)
from .connection import Connection
from .core import FakeServerCore
from .handlers import handle_message
from .http_front import HttpAwareConnection, answer_http, json_response
from .responses import cancel_response
from .script import ScriptedResponse
from .wire import JsonDict


class FakeRealtimeServer(FakeServerCore):
    """Fake OpenAI Realtime server on 127.0.0.1 (see the package docstring; its options are
    ``FakeServerCore.__init__``'s)."""

    _server: Server | None = None
    _reject_status: int | None = None

    @cached_property
    def _conns(self) -> list[Connection]:
        """The live connections (made on first use: the core knows nothing of ``Connection``)."""
        return []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._changed = asyncio.Event()
        self._server = await serve(
            self._handle_connection,
            self.host,
            self.port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            create_connection=HttpAwareConnection,
            max_size=16 * 1024 * 1024,
            ping_interval=None,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        for conn in list(self._conns):
            conn.cancel_tasks()
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> FakeRealtimeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/v1/realtime`` (clients append ``?model=...``)."""
        return f"ws://{self.host}:{self.port}/v1/realtime"

    @property
    def http_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the ``base_url`` of an ``openai`` client for this server."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def client_secrets_url(self) -> str:
        """``http://127.0.0.1:PORT/v1/realtime/client_secrets``."""
        return f"http://{self.host}:{self.port}{CLIENT_SECRETS_PATH}"

    # ------------------------------------------------------------------ controls
    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true (re-checked whenever the fake records something
        and every 50 ms); raise ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

    @property
    def active_connections(self) -> int:
        return len(self._conns)

    @property
    def session(self) -> JsonDict | None:
        """The session state (as last sent in session.created/updated) of the newest live
        connection, e.g. ``server.session["audio"]["input"]["turn_detection"]``."""
        return copy.deepcopy(self._conns[-1].session) if self._conns else None

    @property
    def response_active(self) -> bool:
        """Whether some connection is generating a response right now."""
        return any(c.response is not None and not c.response.finished for c in self._conns)

    async def interrupt_now(self) -> None:
        """Act as if the user started talking now: send ``input_audio_buffer.speech_started``
        on every connection; if a response is being generated and the session's
        turn_detection has ``interrupt_response`` true, cancel it (``response.done`` with
        status ``cancelled``, reason ``turn_detected``) like the real server. The SDK
        reacts with an ``audio_interrupted`` event when it has received answer audio."""
        for conn in list(self._conns):
            await conn.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": conn.audio_ms,
                    "item_id": self._new_id("item"),
                }
            )
            td = conn.turn_detection
            if td is not None and td.get("interrupt_response", True):
                await cancel_response(conn, reason="turn_detected")

    async def send_raw(self, text: str | bytes) -> None:
        """Send a frame verbatim on every connection (e.g. ``"not json"``)."""
        for conn in list(self._conns):
            self.server_events.append({"raw": text})
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(text)

    async def send_event(self, event: JsonDict, *, validate: bool = True) -> None:
        """Send a server event on every connection (``event_id`` added when missing).
        ``validate=False``: skip the openai type check, e.g. for an unknown event type."""
        for conn in list(self._conns):
            await self._send_event(conn.ws, dict(event), control=True, validate=validate)

    async def send_error(
        self,
        message: str = "Something went wrong.",
        *,
        code: str | None = "server_error",
        error_type: str = "server_error",
        event_id: str | None = None,
        param: str | None = None,
    ) -> None:
        """Send an ``error`` event on every connection."""
        await self.send_event(
            {
                "type": "error",
                "error": {
                    "type": error_type,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    async def drop_connections(self, *, abrupt: bool = True) -> None:
        """Close every connection. ``abrupt``: kill the TCP connection without a close
        frame (the client sees ``ConnectionClosedError``, the SDK raises it out of
        ``async for event in session``); otherwise a normal 1000 close (the SDK ends the
        session's event stream quietly)."""
        for conn in list(self._conns):
            conn.cancel_tasks()
            if abrupt:
                conn.ws.transport.abort()
            else:
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.close(1000, "closed by fake server")
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: not self._conns, timeout=2.0)

    def reject_connections(self, status: int | None = HTTPStatus.UNAUTHORIZED) -> None:
        """Answer new opening handshakes with this HTTP status and an OpenAI-style JSON error
        body (``None``: accept again)."""
        self._reject_status = None if status is None else int(status)

    def script_responses(self, *responses: ScriptedResponse) -> None:
        """Queue responses: each new response (a VAD turn's, ``response.create``'s, on any
        connection) takes the next one; when the queue is empty the default behaviour applies
        (a ``tool_name`` call first in each user turn, then the reply audio)."""
        self._script.extend(responses)

    @property
    def scripted_responses_left(self) -> int:
        return len(self._script)

    def never_answer(self, enabled: bool = True) -> None:
        """While enabled the server accepts connections but sends nothing by itself: no
        session.created, no answers to client events (which are still recorded), and a response
        already streaming goes quiet. Only ``send_event``/``send_raw``/``send_error`` get through."""
        self._silent = enabled

    def issue_client_secret(self, session: JsonDict | None = None, *, expires_in_s: float = 600) -> str:
        """Mint an ``ek_…`` key as the client-secrets endpoint would (any lifetime, even <= 0 for
        one that is already expired), without an HTTP request."""
        request: JsonDict = {} if session is None else {"session": session}
        return self._secrets.issue(secret_session(request, self._new_id), expires_in_s).value

    def expire_client_secrets(self, value: str | None = None) -> None:
        """Expire one issued ``ek_…`` key (or all) now: new connections using it are refused."""
        self._secrets.expire(value)

    async def send_audio_delta(self, audio: bytes) -> None:
        """Send one ``response.output_audio.delta`` of ``audio`` (pcm16 bytes; any size, e.g.
        more than the client's frame limit) on every connection, in its active response if any."""
        for conn in list(self._conns):
            response = conn.response
            await self._send_event(
                conn.ws,
                {
                    "type": "response.output_audio.delta",
                    "response_id": response.id if response is not None else self._new_id("resp"),
                    "item_id": self._new_id("item"),
                    "output_index": 0,
                    "content_index": 0,
                    "delta": base64.b64encode(audio).decode("ascii"),
                },
                control=True,
            )

    # ------------------------------------------------------------------ plumbing
    def _front(self, connection: ServerConnection) -> HttpAwareConnection:
        assert isinstance(connection, HttpAwareConnection)  # start() makes only these
        return connection

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        front = self._front(connection)
        if front.http_method != "GET" or urlsplit(request.path).path == CLIENT_SECRETS_PATH:
            return answer_http(self, front, request)
        started = time.monotonic()
        if self.handshake_delay_s > 0:
            await asyncio.sleep(self.handshake_delay_s)
        path = urlsplit(request.path).path
        credentials = presented_credentials(request.headers)
        if self._reject_status is not None:
            status = HTTPStatus(self._reject_status)
            self._refuse(path, status, credentials, "reject_connections")
            message = "Incorrect API key provided." if status == HTTPStatus.UNAUTHORIZED else status.phrase
            code = "invalid_api_key" if status == HTTPStatus.UNAUTHORIZED else None
            return json_response(status, error_body(message, code))
        key_kind, secret = self._check_key(credentials.key)
        if key_kind is None:
            self._refuse(path, HTTPStatus.UNAUTHORIZED, credentials, "bad key")
            return json_response(HTTPStatus.UNAUTHORIZED, invalid_key_body(credentials.key))
        # Stash for _handle_connection.
        front.handshake_started_at = started
        front.auth_info = {
            "auth": credentials.via,
            "key_kind": key_kind if credentials.key is not None else None,
            "client_secret": secret.value if secret is not None else None,
        }
        front.secret_session = secret.session if secret is not None else None
        return None

    def _check_key(self, key: str | None) -> tuple[str | None, ClientSecret | None]:
        """("api_key" | "client_secret", the secret) for an acceptable key; (None, None) if not."""
        if key is not None and key.startswith(EPHEMERAL_PREFIX):
            secret = self._secrets.live(key)
            return ("client_secret", secret) if secret is not None else (None, None)
        if self.api_key is None or key == self.api_key:
            return "api_key", None
        return None, None

    def _refuse(self, path: str, status: HTTPStatus, credentials: Credentials, reason: str) -> None:
        self.refused_connections.append(
            {"path": path, "status": int(status), "auth": credentials.via, "reason": reason}
        )
        self._notify()

    def _select_subprotocol(
        self, connection: ServerConnection, subprotocols: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        """Browsers fail a handshake that offered subprotocols and got none back: answer
        ``realtime`` like the API."""
        return Subprotocol(REALTIME_SUBPROTOCOL) if REALTIME_SUBPROTOCOL in subprotocols else None

    async def _handle_connection(self, ws: ServerConnection) -> None:
        front = self._front(ws)
        request = ws.request
        assert request is not None
        split = urlsplit(request.path)
        query = dict(parse_qsl(split.query))
        headers = {name.lower(): value for name, value in request.headers.raw_items()}
        info: JsonDict = {
            "path": split.path,
            "query": query,
            "model": query.get("model"),
            "headers": headers,
            "authorization": headers.get("authorization"),
            **(front.auth_info or {"auth": None, "key_kind": None, "client_secret": None}),
            "subprotocol": ws.subprotocol,
            "handshake_started_at": front.handshake_started_at,
            "connected_at": time.monotonic(),
        }
        self.connections.append(info)
        conn = Connection(self, ws, info, index=len(self.connections) - 1)
        if front.secret_session is not None:
            # An ephemeral key starts the session it was minted with.
            conn.session = copy.deepcopy(front.secret_session)
            conn.session["id"] = self._new_id("sess")
        self._conns.append(conn)
        self._notify()
        try:
            await conn.send({"type": "session.created", "session": copy.deepcopy(conn.session)})
            async for message in ws:
                await handle_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            conn.cancel_tasks()
            self._conns.remove(conn)
            self._notify()
