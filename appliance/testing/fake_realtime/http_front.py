"""Plain HTTP on the WebSocket port: ``POST /v1/realtime/client_secrets``.

websockets only parses bodiless GET requests, and the Realtime API's client-secrets endpoint is
a ``POST`` on the same host as the WebSocket. ``HttpAwareConnection`` reads any other request's
head and body itself, then hands websockets a bodiless GET with the same path and headers, so
the server's ``process_request`` hook can answer it with ``answer_http`` (the method and body
are on the connection).
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .auth import (
    CLIENT_SECRETS_PATH,
    EPHEMERAL_PREFIX,
    client_secret_response,
    error_body,
    invalid_key_body,
    parse_secret_request,
    secret_session,
)
from .core import FakeServerCore
from .records import ClientSecretRequest
from .wire import JsonDict

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


class HttpAwareConnection(ServerConnection):
    """A websockets server connection that also accepts requests with a body (see module)."""

    http_method: str = "GET"
    http_body: bytes = b""
    http_error: str | None = None
    """Why the request's body could not be read (the request is then answered 400)."""

    # Set by the server's process_request for its connection handler.
    handshake_started_at: float | None = None
    auth_info: JsonDict | None = None
    secret_session: JsonDict | None = None

    _sniffing: bool = True
    _buffer: bytes = b""

    def data_received(self, data: bytes) -> None:
        if not self._sniffing:
            super().data_received(data)
            return
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._pass_on(self._buffer)  # websockets refuses it
            return
        method = self._buffer.split(b" ", 1)[0]
        if method == b"GET":
            self._pass_on(self._buffer)
            return
        head = self._buffer[: head_end + 4]
        lines = head.split(b"\r\n")
        kept: list[bytes] = [b"GET" + lines[0][len(method) :]]
        length = 0
        for line in lines[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name == b"content-length":
                try:
                    length = int(line.split(b":", 1)[1])
                except ValueError:
                    self.http_error = "invalid Content-Length"
            elif name == b"transfer-encoding":
                self.http_error = "chunked bodies are not supported; send Content-Length"
            else:
                kept.append(line)
        if length > MAX_BODY_BYTES:
            self.http_error = "body too large"
            length = 0
        body = self._buffer[head_end + 4 :]
        if len(body) < length:
            return  # wait for the rest of the body
        self.http_method = method.decode("ascii", "replace")
        self.http_body = body[:length]
        self._pass_on(b"\r\n".join(kept))

    def _pass_on(self, data: bytes) -> None:
        self._sniffing = False
        self._buffer = b""
        super().data_received(data)


def answer_http(server: FakeServerCore, front: HttpAwareConnection, request: Request) -> Response:
    """Plain HTTP on the WebSocket port: only ``POST /v1/realtime/client_secrets``."""
    path = urlsplit(request.path).path
    if path != CLIENT_SECRETS_PATH:
        return json_response(HTTPStatus.NOT_FOUND, error_body(f"Invalid URL ({front.http_method} {path})", None))
    if front.http_method != "POST":
        return json_response(
            HTTPStatus.METHOD_NOT_ALLOWED, error_body(f"Invalid method {front.http_method} for {path}", None)
        )
    status, body, value = grant_client_secret(server, front, request)
    parsed: JsonDict | None
    try:
        loaded = json.loads(front.http_body or b"{}")
        parsed = loaded if isinstance(loaded, dict) else None
    except ValueError:
        parsed = None
    server.client_secret_requests.append(ClientSecretRequest(parsed, int(status), value, time.monotonic()))
    server._notify()
    return json_response(status, body)


def grant_client_secret(
    server: FakeServerCore, front: HttpAwareConnection, request: Request
) -> tuple[HTTPStatus, JsonDict, str | None]:
    """(status, body, issued secret) for a client-secrets request: any key but an ephemeral one
    when the server has no ``api_key``, else exactly it."""
    if front.http_error is not None:
        return HTTPStatus.BAD_REQUEST, error_body(front.http_error, "invalid_request"), None
    authorization = request.headers.get("Authorization", "")
    key = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else None
    ephemeral = key is not None and key.startswith(EPHEMERAL_PREFIX)
    if key is None or ephemeral or (server.api_key is not None and key != server.api_key):
        return HTTPStatus.UNAUTHORIZED, invalid_key_body(key), None
    parsed, seconds, error = parse_secret_request(front.http_body)
    if error is not None or parsed is None:
        return HTTPStatus.BAD_REQUEST, error or error_body("Bad request.", None), None
    secret = server._secrets.issue(secret_session(parsed, server._new_id), seconds)
    body = client_secret_response(secret)
    if server._validate_secret_response is not None:
        try:
            server._validate_secret_response(body)
        except Exception as exc:  # pydantic.ValidationError
            logger.error("fake realtime server sent an invalid client secret: %s", exc)
            server.invalid_events_sent.append((body, str(exc)))
    return HTTPStatus.OK, body, secret.value


def json_response(status: HTTPStatus, body: JsonDict) -> Response:
    """An HTTP response with a JSON body (the connection closes after it)."""
    data = json.dumps(body).encode()
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(data))),
            ("Content-Type", "application/json"),
        ]
    )
    return Response(int(status), status.phrase, headers, data)
