"""Plain HTTP requests with a body on the WebSocket port.

websockets only parses bodiless GET requests, and the Realtime API's client-secrets endpoint is
a ``POST`` on the same host as the WebSocket. This connection class reads any other request's
head and body itself, then hands websockets a bodiless GET with the same path and headers, so
the server's ``process_request`` hook can answer it (it finds the method and body here).
"""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection

from .wire import JsonDict

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
