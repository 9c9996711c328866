"""The fake server itself: configuration, recordings, the controls a test drives, and the
WebSocket plumbing (handshake, one ``Connection`` per client, validated sends)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
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
    ClientSecretStore,
    Credentials,
    error_body,
    invalid_key_body,
    presented_credentials,
    response_validator,
    secret_session,
)
from .connection import Connection
from .handlers import handle_message
from .http_front import HttpAwareConnection, answer_http, json_response
from .records import ClientSecretRequest, FunctionCallOutput
from .responses import FunctionCall, ScriptedResponse, cancel_response
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
        tool_name: when set and nothing is scripted, the first response of each user turn is
            a completed ``function_call`` to this tool (arguments ``tool_arguments``); the audio
            answer comes after the client sends the ``function_call_output`` and
            ``response.create``. ``None``: answer each turn with audio directly.
        vad_threshold: RMS (int16 scale) of a 10 ms frame above which it counts as speech.
        silence_ms_to_end_turn: trailing silence that ends a VAD turn.
        min_speech_ms: speech shorter than this when silence comes is dropped (no turn).
        reply_chunk_ms: milliseconds of audio per ``response.output_audio.delta``.
        reply_chunk_interval_s: sleep between audio deltas (``None``: real time, i.e.
            ``reply_chunk_ms / 1000``; default 0: as fast as possible).
        respond_on_commit: in push-to-talk mode (turn_detection null) also create a response
            when the client commits (the real API waits for ``response.create``).
        api_key: the key clients must present (``Authorization: Bearer`` or the
            ``openai-insecure-api-key.`` subprotocol), or an unexpired ``ek_…`` secret this server
            issued. ``None``: any key, or none, is accepted on the WebSocket (issued ``ek_`` keys
            must still be live) and the client-secrets endpoint wants any non-ephemeral bearer key.
        script: responses to give, in order, before falling back to the default behaviour
            (see ``script_responses``).
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
        api_key: str | None = None,
        script: Sequence[ScriptedResponse] = (),
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
        self.api_key = api_key
        self.host = host
        self.port = port

        # ------------------------------------------------------------ recordings
        self.connections: list[JsonDict] = []
        """Per accepted connection: path, query (dict), model, headers (dict, lower-case
        names), authorization (header value or None), auth ("header", "subprotocol" or None:
        how the client authenticated), key_kind ("api_key", "client_secret" or None),
        client_secret (the ``ek_…`` used, or None), subprotocol (the one the server chose, or
        None), connected_at, handshake_started_at (time.monotonic())."""
        self.refused_connections: list[JsonDict] = []
        """Opening handshakes answered with an HTTP error: path, status, auth, reason."""
        self.client_events: list[JsonDict] = []
        """Every JSON event received from clients, in order (all connections)."""
        self.received_audio = bytearray()
        """Concatenated pcm16 24 kHz audio from every input_audio_buffer.append."""
        self.tool_outputs: list[JsonDict] = []
        """``function_call_output`` items the clients created (raw items)."""
        self.function_call_outputs: list[FunctionCallOutput] = []
        """The same outputs with the call's name and whether/when a response.create followed."""
        self.function_calls: list[FunctionCall] = []
        """Every function call the fake made (default or scripted), call_id filled in."""
        self.client_secret_requests: list[ClientSecretRequest] = []
        """Every ``POST /v1/realtime/client_secrets`` (granted or refused)."""
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
        self._silent = False
        self._script: deque[ScriptedResponse] = deque(script)
        self._secrets = ClientSecretStore()
        self._validate_secret_response = response_validator()
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
            await self._send_event(conn, dict(event), control=True, validate=validate)

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
                conn,
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

    # ------------------------------------------------------------------ session.update views
    @property
    def instructions_sent(self) -> list[str]:
        """``instructions`` of every session.update that set them, in order."""
        return [u["instructions"] for u in self.session_updates if isinstance(u.get("instructions"), str)]

    @property
    def tools_offered(self) -> list[list[str]]:
        """Tool names of every session.update that set ``tools``, in order."""
        return [
            [str(tool.get("name")) for tool in u["tools"] if isinstance(tool, dict)]
            for u in self.session_updates
            if isinstance(u.get("tools"), list)
        ]

    @property
    def voices_sent(self) -> list[str]:
        """``audio.output.voice`` of every session.update that set it, in order."""
        voices = []
        for update in self.session_updates:
            output = (update.get("audio") or {}).get("output") if isinstance(update.get("audio"), dict) else None
            if isinstance(output, dict) and isinstance(output.get("voice"), str):
                voices.append(output["voice"])
        return voices

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

    async def _send_event(
        self, conn: Connection, event: JsonDict, *, control: bool = False, validate: bool = True
    ) -> None:
        """Send one event. While ``never_answer`` is on only ``control`` sends (the test's own
        ``send_event``/``send_error``/``send_audio_delta``) go out."""
        if self._silent and not control:
            return
        event.setdefault("event_id", self._new_id("event"))
        if validate and self._validate is not None:
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
