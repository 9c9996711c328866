"""The fake server itself: configuration, recordings, the controls a test drives, and the
WebSocket plumbing (handshake, one ``Connection`` per client, validated sends)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .connection import Connection
from .handlers import handle_message
from .responses import cancel_response
from .wire import JsonDict, load_reply_audio, server_event_validator

logger = logging.getLogger(__name__)


class FakeRealtimeServer:
    """Fake OpenAI Realtime server on 127.0.0.1 (see module docstring).

    Args:
        handshake_delay_s: sleep before completing each WebSocket opening handshake, so
            the client really waits as with a distant server.
        reply_audio: pcm16 24 kHz mono bytes streamed as the answer (default: the
            ``appliance/defaults/samples/reply_24k.wav``, see ``load_reply_audio``).
        reply_transcript: the answer's transcript (sent as transcript deltas per word).
        user_transcript: transcription reported for every committed user turn.
        tool_name: when set, the first response of each user turn is a completed
            ``function_call`` to this tool (arguments ``tool_arguments``); the audio answer
            comes after the client sends the ``function_call_output`` and ``response.create``.
            ``None``: answer each turn with audio directly.
        vad_threshold: RMS (int16 scale) of a 10 ms frame above which it counts as speech.
        silence_ms_to_end_turn: trailing silence that ends a VAD turn.
        min_speech_ms: speech shorter than this when silence comes is dropped (no turn).
        reply_chunk_ms: milliseconds of audio per ``response.output_audio.delta``.
        reply_chunk_interval_s: sleep between audio deltas (``None``: real time, i.e.
            ``reply_chunk_ms / 1000``; default 0: as fast as possible).
        respond_on_commit: in push-to-talk mode (turn_detection null) also create a response
            when the client commits (the real API waits for ``response.create``).
        host, port: where to listen (port 0: ephemeral).
    """

    def __init__(
        self,
        *,
        handshake_delay_s: float = 0.0,
        reply_audio: bytes | None = None,
        reply_transcript: str = "It is ten past three.",
        user_transcript: str = "what time is it",
        tool_name: str | None = "get_current_time",
        tool_arguments: str = "{}",
        vad_threshold: float = 300.0,
        silence_ms_to_end_turn: int = 500,
        min_speech_ms: int = 100,
        reply_chunk_ms: int = 100,
        reply_chunk_interval_s: float | None = 0.0,
        respond_on_commit: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.handshake_delay_s = handshake_delay_s
        self.reply_audio: bytes = load_reply_audio() if reply_audio is None else bytes(reply_audio)
        if len(self.reply_audio) % 2:
            raise ValueError("reply_audio must be whole pcm16 samples")
        self.reply_transcript = reply_transcript
        self.user_transcript = user_transcript
        self.tool_name = tool_name
        self.tool_arguments = tool_arguments
        self.vad_threshold = vad_threshold
        self.silence_ms_to_end_turn = silence_ms_to_end_turn
        self.min_speech_ms = min_speech_ms
        self.reply_chunk_ms = reply_chunk_ms
        self.reply_chunk_interval_s = (
            reply_chunk_ms / 1000 if reply_chunk_interval_s is None else reply_chunk_interval_s
        )
        self.respond_on_commit = respond_on_commit
        self.host = host
        self.port = port

        # ------------------------------------------------------------ recordings
        self.connections: list[JsonDict] = []
        """Per accepted connection: path, query (dict), model, headers (dict, lower-case
        names), authorization (header value or None), connected_at, handshake_started_at
        (time.monotonic())."""
        self.client_events: list[JsonDict] = []
        """Every JSON event received from clients, in order (all connections)."""
        self.received_audio = bytearray()
        """Concatenated pcm16 24 kHz audio from every input_audio_buffer.append."""
        self.tool_outputs: list[JsonDict] = []
        """``function_call_output`` items the clients created."""
        self.session_updates: list[JsonDict] = []
        """The ``session`` object of every session.update received."""
        self.truncations: list[JsonDict] = []
        """Every conversation.item.truncate event received."""
        self.cancels: list[JsonDict] = []
        """Every response.cancel event received."""
        self.responses: list[JsonDict] = []
        """Final ``response`` object of every response.done sent (status, output, ...)."""
        self.user_turns: list[JsonDict] = []
        """Committed user turns: item_id, audio (pcm16 bytes of the turn), start/end ms."""
        self.server_events: list[JsonDict] = []
        """Every event sent (including raw ones as {"raw": text})."""
        self.sent_at: list[float] = []
        """time.monotonic() at which each entry of ``server_events`` was sent (same order)."""
        self.invalid_events_sent: list[tuple[JsonDict, str]] = []
        """(event, error) for sent events the openai types reject: should stay empty."""
        self.errors: list[BaseException] = []
        """Exceptions raised inside the fake's own tasks: should stay empty."""

        self._reject_status: int | None = None
        self._server: Server | None = None
        self._conns: list[Connection] = []
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._validate = server_event_validator()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._changed = asyncio.Event()
        self._server = await serve(
            self._handle_connection,
            self.host,
            self.port,
            process_request=self._process_request,
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

    async def send_event(self, event: JsonDict) -> None:
        """Send a server event on every connection (``event_id`` added when missing)."""
        for conn in list(self._conns):
            await conn.send(dict(event))

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
        """Answer new opening handshakes with this HTTP status (``None``: accept again)."""
        self._reject_status = None if status is None else int(status)

    # ------------------------------------------------------------------ plumbing
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _notify(self) -> None:
        self._changed.set()

    def _log_task_failure(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            if not isinstance(exc, ConnectionClosed):
                logger.error("fake realtime server task failed", exc_info=exc)
                self.errors.append(exc)
                self._notify()

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        started = time.monotonic()
        if self.handshake_delay_s > 0:
            await asyncio.sleep(self.handshake_delay_s)
        if self._reject_status is not None:
            status = HTTPStatus(self._reject_status)
            return connection.respond(status, f"{status.phrase}\n")
        # Stash for _handle_connection.
        connection.fake_handshake_started_at = started  # type: ignore[attr-defined]
        return None

    async def _handle_connection(self, ws: ServerConnection) -> None:
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
            "handshake_started_at": getattr(ws, "fake_handshake_started_at", None),
            "connected_at": time.monotonic(),
        }
        self.connections.append(info)
        conn = Connection(self, ws, info)
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

    async def _send_event(self, conn: Connection, event: JsonDict) -> None:
        event.setdefault("event_id", self._new_id("event"))
        if self._validate is not None:
            try:
                self._validate(event)
            except Exception as exc:  # pydantic.ValidationError
                logger.error("fake realtime server sent an invalid event: %s", exc)
                self.invalid_events_sent.append((event, str(exc)))
        self.server_events.append(event)
        self.sent_at.append(time.monotonic())
        self._notify()
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(json.dumps(event))
