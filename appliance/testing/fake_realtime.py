"""A fake OpenAI Realtime (GA) WebSocket server for tests.

It speaks enough of the real event protocol that the real ``agents.realtime`` SDK runs a
whole conversation against it: session.created/updated, input audio with a simple energy
VAD (or push-to-talk commits), user items with a canned transcription, a function call
answered by the client's tool output, a streamed pcm16 24 kHz audio answer, cancellation,
truncation, errors, garbage frames and dropped connections.

Usage::

    async with FakeRealtimeServer() as server:
        model_config = {"url": server.url + "?model=gpt-realtime", "api_key": "sk-test"}
        ...  # drive the SDK, then assert on server.received_audio, server.tool_outputs, ...

Every event the server sends is checked against the ``openai`` package's server-event
types (as the SDK validates them); failures are collected in ``invalid_events_sent`` so a
test can assert the fake itself stayed valid. Events injected with ``send_raw`` are not
checked.

Recordings: ``connections`` (path, query, model, headers, authorization, timings),
``client_events``, ``received_audio``, ``user_turns``, ``session_updates``, ``tool_outputs``,
``truncations``, ``cancels``, ``responses``, ``server_events``, ``session`` (live state).
Controls: ``wait_for(predicate, timeout)``, ``interrupt_now()``, ``send_raw(text)``,
``send_event(dict)``, ``send_error(...)``, ``drop_connections(abrupt=...)``,
``reject_connections(status)``.

What the SDK does with them (agents 0.24): ``send_raw("not json")`` makes
``async for event in session`` raise ``json.JSONDecodeError`` and closes the session (no
``error`` event); ``send_error`` becomes an ``error`` session event; an abrupt drop raises
``ConnectionClosedError`` out of ``async for``; a graceful drop just ends the iteration;
a rejected handshake raises ``websockets.exceptions.InvalidStatus`` from ``async with
session``. Without a real ``RealtimePlaybackTracker`` the SDK treats the next turn's
``speech_started`` as an interruption of the previous (finished) answer: it emits
``audio_interrupted`` and sends ``conversation.item.truncate``; the fake answers both.

Deliberate simplifications (see ``FakeRealtimeServer`` for the knobs):

* Input and output audio are pcm16 24 kHz mono (the only pcm rate the API accepts).
* Both ``server_vad`` and ``semantic_vad`` are simulated by the same RMS energy detector.
  The end-of-turn silence is the client's ``silence_duration_ms`` when it sends a
  ``server_vad`` config with one, otherwise ``silence_ms_to_end_turn``.
* As on the real API, with ``turn_detection`` null (push-to-talk) ``input_audio_buffer.commit``
  only commits the user turn; the client must send ``response.create`` for an answer
  (the SDK does not do that on ``send_audio(commit=True)``). ``respond_on_commit=True``
  makes the fake answer on commit anyway.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import logging
import time
import wave
from collections.abc import Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
"""Rate of pcm16 audio in both directions (the Realtime API's pcm format)."""

BYTES_PER_MS = SAMPLE_RATE * 2 // 1000

DEFAULT_REPLY_WAV = Path(__file__).resolve().parents[1] / "defaults" / "samples" / "reply_24k.wav"

_VAD_FRAME_MS = 10

JsonDict = dict[str, Any]


def load_reply_audio(path: str | Path = DEFAULT_REPLY_WAV) -> bytes:
    """Raw pcm16 bytes of a mono 16-bit 24 kHz WAV (default: the committed reply fixture)."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, SAMPLE_RATE):
            raise ValueError(f"{path}: expected mono 16-bit {SAMPLE_RATE} Hz")
        return wav.readframes(wav.getnframes())


def _server_event_validator() -> Callable[[JsonDict], None] | None:
    """Validate an outgoing event the way the SDK does, if the openai package is present."""
    try:
        from typing import Annotated

        from openai.types.realtime.realtime_server_event import RealtimeServerEvent
        from pydantic import Field, TypeAdapter
    except ImportError:  # pragma: no cover - the test venv always has openai
        return None
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])

    def validate(event: JsonDict) -> None:
        adapter.validate_python(event)

    return validate


def _deep_merge(base: JsonDict, update: Mapping[str, Any]) -> JsonDict:
    """Merge ``update`` into a copy of ``base``; nested dicts merge, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _Response:
    """One model response being generated on a connection."""

    def __init__(self, response_id: str) -> None:
        self.id = response_id
        self.task: asyncio.Task[None] | None = None
        self.output: list[JsonDict] = []
        self.finished = False


class _Connection:
    """Per-connection protocol state."""

    def __init__(self, server: FakeRealtimeServer, ws: ServerConnection, info: JsonDict) -> None:
        self.server = server
        self.ws = ws
        self.info = info
        self.session: JsonDict = server._initial_session(info.get("model") or "gpt-realtime")
        # Input audio timeline (ms since the first append) and VAD state.
        self.audio = bytearray()  # everything this connection appended
        self.audio_bytes_total = 0
        self.pending_vad = bytearray()
        self.buffer_bytes = 0  # bytes appended since the last commit/clear
        self.in_speech = False
        self.speech_item_id: str | None = None
        self.speech_start_ms = 0
        self.speech_ms = 0
        self.silence_ms = 0
        # Conversation.
        self.items: dict[str, JsonDict] = {}
        self.last_item_id: str | None = None
        self.response: _Response | None = None
        self.call_ids: set[str] = set()  # call_ids of function calls this server made
        self.tool_called_this_turn = False

    # ----------------------------------------------------------------- helpers
    @property
    def turn_detection(self) -> JsonDict | None:
        td = self.session.get("audio", {}).get("input", {}).get("turn_detection")
        return td if isinstance(td, dict) else None

    @property
    def audio_ms(self) -> int:
        return self.audio_bytes_total // BYTES_PER_MS

    def end_of_turn_silence_ms(self) -> int:
        td = self.turn_detection or {}
        value = td.get("silence_duration_ms")
        if td.get("type") == "server_vad" and isinstance(value, int) and value > 0:
            return value
        return self.server.silence_ms_to_end_turn

    async def send(self, event: JsonDict) -> None:
        await self.server._send_event(self, event)

    def add_item(self, item: JsonDict) -> str | None:
        previous = self.last_item_id
        self.items[item["id"]] = item
        self.last_item_id = item["id"]
        return previous


class FakeRealtimeServer:
    """Fake OpenAI Realtime server on 127.0.0.1 (see module docstring).

    Args:
        handshake_delay_s: sleep before completing each WebSocket opening handshake, so
            the client really waits as with a distant server.
        reply_audio: pcm16 24 kHz mono bytes streamed as the answer (default: the
            ``tests/fixtures/reply_24k.wav`` fixture).
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
        self._conns: list[_Connection] = []
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._validate = _server_event_validator()

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
            self._cancel_conn_tasks(conn)
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
                await self._cancel_response(conn, reason="turn_detected")

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
            self._cancel_conn_tasks(conn)
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

    def _cancel_conn_tasks(self, conn: _Connection) -> None:
        if conn.response is not None and conn.response.task is not None:
            conn.response.task.cancel()

    def _initial_session(self, model: str) -> JsonDict:
        pcm = {"type": "audio/pcm", "rate": SAMPLE_RATE}
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self._new_id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "prompt": None,
            "expires_at": int(time.time()) + 3600,
            "include": None,
            "audio": {
                "input": {
                    "format": pcm,
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 500,
                        "idle_timeout_ms": None,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {"format": pcm, "voice": "marin", "speed": 1.0},
            },
        }

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
        conn = _Connection(self, ws, info)
        self._conns.append(conn)
        self._notify()
        try:
            await conn.send({"type": "session.created", "session": copy.deepcopy(conn.session)})
            async for message in ws:
                await self._handle_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self._cancel_conn_tasks(conn)
            self._conns.remove(conn)
            self._notify()

    async def _send_event(self, conn: _Connection, event: JsonDict) -> None:
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

    async def _send_client_error(self, conn: _Connection, message: str, code: str, event_id: Any) -> None:
        await conn.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": event_id if isinstance(event_id, str) else None,
                },
            }
        )

    # ------------------------------------------------------------------ client events
    async def _handle_message(self, conn: _Connection, message: str | bytes) -> None:
        try:
            event = json.loads(message)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            await self._send_client_error(conn, "The event is not valid JSON.", "invalid_json", None)
            return
        self.client_events.append(event)
        self._notify()
        kind = event.get("type")
        handler = {
            "session.update": self._on_session_update,
            "input_audio_buffer.append": self._on_audio_append,
            "input_audio_buffer.commit": self._on_audio_commit,
            "input_audio_buffer.clear": self._on_audio_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.retrieve": self._on_item_retrieve,
            "conversation.item.truncate": self._on_item_truncate,
            "conversation.item.delete": self._on_item_delete,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
            "output_audio_buffer.clear": self._on_ignored,
        }.get(str(kind))
        if handler is None:
            await self._send_client_error(
                conn,
                f"Invalid value: '{kind}'. Unsupported event type.",
                "invalid_value",
                event.get("event_id"),
            )
            return
        await handler(conn, event)

    async def _on_ignored(self, conn: _Connection, event: JsonDict) -> None:
        return None

    async def _on_session_update(self, conn: _Connection, event: JsonDict) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            await self._send_client_error(
                conn,
                "Missing required parameter: 'session'.",
                "missing_required_parameter",
                event.get("event_id"),
            )
            return
        self.session_updates.append(session)
        merged = _deep_merge(conn.session, session)
        audio_input = (
            (session.get("audio") or {}).get("input") if isinstance(session.get("audio"), dict) else None
        )
        if isinstance(audio_input, dict) and "turn_detection" in audio_input:
            # The API replaces turn_detection as a whole (null: push-to-talk).
            merged["audio"]["input"]["turn_detection"] = copy.deepcopy(audio_input["turn_detection"])
        merged["type"] = "realtime"
        conn.session = merged
        await conn.send({"type": "session.updated", "session": copy.deepcopy(conn.session)})

    async def _on_audio_append(self, conn: _Connection, event: JsonDict) -> None:
        try:
            audio = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError):
            await self._send_client_error(
                conn,
                "Invalid 'audio'. Expected base64-encoded audio.",
                "invalid_value",
                event.get("event_id"),
            )
            return
        self.received_audio += audio
        conn.audio += audio
        conn.audio_bytes_total += len(audio)
        conn.buffer_bytes += len(audio)
        conn.pending_vad += audio
        if conn.turn_detection is None:
            conn.pending_vad.clear()
            return
        await self._run_vad(conn)

    async def _run_vad(self, conn: _Connection) -> None:
        frame_bytes = _VAD_FRAME_MS * BYTES_PER_MS
        # Timeline position of the first byte still waiting in pending_vad.
        pos_ms = (conn.audio_bytes_total - len(conn.pending_vad)) // BYTES_PER_MS
        while len(conn.pending_vad) >= frame_bytes:
            frame = np.frombuffer(bytes(conn.pending_vad[:frame_bytes]), dtype="<i2").astype(np.float64)
            del conn.pending_vad[:frame_bytes]
            rms = float(np.sqrt(np.mean(frame * frame)))
            if rms >= self.vad_threshold:
                conn.silence_ms = 0
                if not conn.in_speech:
                    conn.in_speech = True
                    conn.speech_start_ms = pos_ms
                    conn.speech_ms = 0
                    conn.speech_item_id = self._new_id("item")
                    await self._speech_started(conn)
                conn.speech_ms += _VAD_FRAME_MS
            elif conn.in_speech:
                conn.silence_ms += _VAD_FRAME_MS
                if conn.silence_ms >= conn.end_of_turn_silence_ms():
                    await self._speech_stopped(conn, end_ms=pos_ms + _VAD_FRAME_MS)
            pos_ms += _VAD_FRAME_MS

    async def _speech_started(self, conn: _Connection) -> None:
        assert conn.speech_item_id is not None
        await conn.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": conn.speech_start_ms,
                "item_id": conn.speech_item_id,
            }
        )
        td = conn.turn_detection or {}
        if td.get("interrupt_response", True):
            await self._cancel_response(conn, reason="turn_detected")

    async def _speech_stopped(self, conn: _Connection, end_ms: int) -> None:
        item_id = conn.speech_item_id or self._new_id("item")
        conn.in_speech = False
        conn.speech_item_id = None
        await conn.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": item_id}
        )
        if conn.speech_ms < self.min_speech_ms:
            return  # a blip: no user turn
        td = conn.turn_detection or {}
        turn_audio = bytes(conn.audio[conn.speech_start_ms * BYTES_PER_MS : end_ms * BYTES_PER_MS])
        await self._commit_user_turn(
            conn,
            item_id=item_id,
            audio=turn_audio,
            start_ms=conn.speech_start_ms,
            end_ms=end_ms,
            respond=bool(td.get("create_response", True)),
        )

    async def _on_audio_commit(self, conn: _Connection, event: JsonDict) -> None:
        if conn.buffer_bytes < 100 * BYTES_PER_MS:
            await self._send_client_error(
                conn,
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
                f"audio, but buffer only has {conn.buffer_bytes / BYTES_PER_MS:.2f}ms of audio.",
                "input_audio_buffer_commit_empty",
                event.get("event_id"),
            )
            return
        audio = bytes(conn.audio[len(conn.audio) - conn.buffer_bytes :])
        end_ms = conn.audio_ms
        start_ms = end_ms - conn.buffer_bytes // BYTES_PER_MS
        conn.in_speech = False
        conn.speech_item_id = None
        conn.pending_vad.clear()
        respond = self.respond_on_commit and conn.turn_detection is None
        await self._commit_user_turn(
            conn, item_id=self._new_id("item"), audio=audio, start_ms=start_ms, end_ms=end_ms, respond=respond
        )

    async def _on_audio_clear(self, conn: _Connection, event: JsonDict) -> None:
        conn.buffer_bytes = 0
        conn.pending_vad.clear()
        conn.in_speech = False
        conn.speech_item_id = None
        await conn.send({"type": "input_audio_buffer.cleared"})

    async def _commit_user_turn(
        self, conn: _Connection, *, item_id: str, audio: bytes, start_ms: int, end_ms: int, respond: bool
    ) -> None:
        conn.buffer_bytes = 0
        conn.tool_called_this_turn = False
        item: JsonDict = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = conn.add_item(item)
        self.user_turns.append({"item_id": item_id, "audio": audio, "start_ms": start_ms, "end_ms": end_ms})
        await conn.send(
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous}
        )
        await conn.send(
            {"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous}
        )
        await conn.send(
            {"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous}
        )
        item["content"][0]["transcript"] = self.user_transcript
        await conn.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": self.user_transcript,
                "usage": {"type": "duration", "seconds": round(max(end_ms - start_ms, 0) / 1000, 3)},
            }
        )
        if respond:
            await self._start_response(conn)

    async def _on_item_create(self, conn: _Connection, event: JsonDict) -> None:
        item = event.get("item")
        if not isinstance(item, dict) or "type" not in item:
            await self._send_client_error(
                conn,
                "Missing required parameter: 'item'.",
                "missing_required_parameter",
                event.get("event_id"),
            )
            return
        item = copy.deepcopy(item)
        item.setdefault("id", self._new_id("item"))
        item.setdefault("object", "realtime.item")
        item["status"] = "completed"
        if item["type"] == "function_call_output":
            self.tool_outputs.append(copy.deepcopy(item))
            if item.get("call_id") not in conn.call_ids:
                # The real API rejects an output for a call it never made.
                await self._send_client_error(
                    conn,
                    f"Tool call ID '{item.get('call_id')}' not found in conversation.",
                    "invalid_tool_call_id",
                    event.get("event_id"),
                )
                return
            conn.tool_called_this_turn = True
        if item["type"] == "message":
            # Our canned items carry transcripts; a user text message is just stored.
            conn.tool_called_this_turn = False
        previous = conn.add_item(item)
        await conn.send(
            {"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous}
        )
        await conn.send(
            {"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous}
        )

    async def _on_item_retrieve(self, conn: _Connection, event: JsonDict) -> None:
        item = conn.items.get(str(event.get("item_id")))
        if item is None:
            await self._send_client_error(
                conn,
                f"Item with item_id '{event.get('item_id')}' not found.",
                "item_not_found",
                event.get("event_id"),
            )
            return
        await conn.send({"type": "conversation.item.retrieved", "item": copy.deepcopy(item)})

    async def _on_item_truncate(self, conn: _Connection, event: JsonDict) -> None:
        self.truncations.append(event)
        item_id = str(event.get("item_id"))
        if item_id not in conn.items:
            await self._send_client_error(
                conn, f"Item with item_id '{item_id}' not found.", "item_not_found", event.get("event_id")
            )
            return
        await conn.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": int(event.get("content_index") or 0),
                "audio_end_ms": int(event.get("audio_end_ms") or 0),
            }
        )

    async def _on_item_delete(self, conn: _Connection, event: JsonDict) -> None:
        item_id = str(event.get("item_id"))
        if conn.items.pop(item_id, None) is None:
            await self._send_client_error(
                conn, f"Item with item_id '{item_id}' not found.", "item_not_found", event.get("event_id")
            )
            return
        await conn.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_response_create(self, conn: _Connection, event: JsonDict) -> None:
        if conn.response is not None and not conn.response.finished:
            await self._send_client_error(
                conn,
                "Conversation already has an active response in progress: "
                f"{conn.response.id}. Wait until the response is finished before creating a new one.",
                "conversation_already_has_active_response",
                event.get("event_id"),
            )
            return
        await self._start_response(conn)

    async def _on_response_cancel(self, conn: _Connection, event: JsonDict) -> None:
        self.cancels.append(event)
        wanted = event.get("response_id")
        active = conn.response
        if active is None or active.finished or (wanted is not None and wanted != active.id):
            await self._send_client_error(
                conn,
                "Cancellation failed: no active response found.",
                "response_cancel_not_active",
                event.get("event_id"),
            )
            return
        await self._cancel_response(conn, reason="client_cancelled")

    # ------------------------------------------------------------------ responses
    async def _start_response(self, conn: _Connection) -> None:
        previous = conn.response
        if previous is not None and not previous.finished and previous.task is not None:
            # A VAD turn ended while an uninterruptible answer is still streaming: the
            # server answers the new turn after it, one response at a time.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(previous.task)
        response = _Response(self._new_id("resp"))
        conn.response = response
        want_tool = self.tool_name is not None and not conn.tool_called_this_turn
        # Created synchronously so later client events see it as active.
        await conn.send({"type": "response.created", "response": self._response_obj(response, "in_progress")})
        coro = (
            self._stream_tool_call(conn, response) if want_tool else self._stream_audio_answer(conn, response)
        )
        response.task = asyncio.ensure_future(coro)
        response.task.add_done_callback(self._log_task_failure)

    def _response_obj(self, response: _Response, status: str, reason: str | None = None) -> JsonDict:
        obj: JsonDict = {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": copy.deepcopy(response.output),
            "conversation_id": "conv_fake",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": SAMPLE_RATE}, "voice": "marin"}},
            "usage": None,
            "metadata": None,
        }
        if status != "in_progress":
            obj["status_details"] = {"type": status, "reason": reason, "error": None}
            obj["usage"] = {
                "total_tokens": 150,
                "input_tokens": 100,
                "output_tokens": 50,
                "input_token_details": {"text_tokens": 80, "audio_tokens": 20, "cached_tokens": 0},
                "output_token_details": {"text_tokens": 10, "audio_tokens": 40},
            }
        return obj

    async def _finish_response(
        self, conn: _Connection, response: _Response, status: str, reason: str | None = None
    ) -> None:
        if response.finished:
            return
        response.finished = True
        final = self._response_obj(response, status, reason)
        self.responses.append(final)
        await conn.send({"type": "response.done", "response": final})

    async def _cancel_response(self, conn: _Connection, reason: str) -> None:
        response = conn.response
        if response is None or response.finished:
            return
        if response.task is not None and response.task is not asyncio.current_task():
            response.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await response.task
        for item in response.output:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
        await self._finish_response(conn, response, "cancelled", reason)

    async def _stream_tool_call(self, conn: _Connection, response: _Response) -> None:
        assert self.tool_name is not None
        item_id = self._new_id("item")
        call_id = self._new_id("call")
        item: JsonDict = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": self.tool_name,
            "call_id": call_id,
            "arguments": "",
        }
        response.output.append(item)
        previous = conn.add_item(item)
        base = {"response_id": response.id, "output_index": 0}
        await conn.send({"type": "response.output_item.added", **base, "item": copy.deepcopy(item)})
        await conn.send(
            {"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous}
        )
        await conn.send(
            {
                "type": "response.function_call_arguments.delta",
                **base,
                "item_id": item_id,
                "call_id": call_id,
                "delta": self.tool_arguments,
            }
        )
        await conn.send(
            {
                "type": "response.function_call_arguments.done",
                **base,
                "item_id": item_id,
                "call_id": call_id,
                "name": self.tool_name,
                "arguments": self.tool_arguments,
            }
        )
        item["arguments"] = self.tool_arguments
        item["status"] = "completed"
        conn.call_ids.add(call_id)
        await conn.send({"type": "response.output_item.done", **base, "item": copy.deepcopy(item)})
        await conn.send(
            {"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous}
        )
        await self._finish_response(conn, response, "completed")

    async def _stream_audio_answer(self, conn: _Connection, response: _Response) -> None:
        item_id = self._new_id("item")
        item: JsonDict = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        response.output.append(item)
        previous = conn.add_item(item)
        base = {"response_id": response.id, "output_index": 0}
        part = {"response_id": response.id, "output_index": 0, "item_id": item_id, "content_index": 0}
        await conn.send({"type": "response.output_item.added", **base, "item": copy.deepcopy(item)})
        await conn.send(
            {"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous}
        )
        await conn.send(
            {"type": "response.content_part.added", **part, "part": {"type": "audio", "transcript": ""}}
        )
        item["content"] = [{"type": "output_audio", "transcript": ""}]

        chunk_bytes = max(2, self.reply_chunk_ms * BYTES_PER_MS)
        chunks = [self.reply_audio[i : i + chunk_bytes] for i in range(0, len(self.reply_audio), chunk_bytes)]
        words = self.reply_transcript.split(" ")
        sent_words = 0
        for index, chunk in enumerate(chunks):
            if index:
                await asyncio.sleep(self.reply_chunk_interval_s)
            # Spread transcript words over the audio, as the API interleaves them.
            due = -(-len(words) * (index + 1) // len(chunks))
            while sent_words < due:
                delta = words[sent_words] if sent_words == 0 else " " + words[sent_words]
                await conn.send({"type": "response.output_audio_transcript.delta", **part, "delta": delta})
                sent_words += 1
            await conn.send(
                {
                    "type": "response.output_audio.delta",
                    **part,
                    "delta": base64.b64encode(chunk).decode("ascii"),
                }
            )
        while sent_words < len(words):
            delta = words[sent_words] if sent_words == 0 else " " + words[sent_words]
            await conn.send({"type": "response.output_audio_transcript.delta", **part, "delta": delta})
            sent_words += 1

        await conn.send({"type": "response.output_audio.done", **part})
        await conn.send(
            {"type": "response.output_audio_transcript.done", **part, "transcript": self.reply_transcript}
        )
        item["content"] = [{"type": "output_audio", "transcript": self.reply_transcript}]
        await conn.send(
            {
                "type": "response.content_part.done",
                **part,
                "part": {"type": "audio", "transcript": self.reply_transcript},
            }
        )
        item["status"] = "completed"
        await conn.send({"type": "response.output_item.done", **base, "item": copy.deepcopy(item)})
        await conn.send(
            {"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous}
        )
        await self._finish_response(conn, response, "completed")
