"""What the fake server shares with its connections: the options a test set, the recordings,
the ids it hands out and the validated send. The modules that play the protocol (``responses``,
``connection``, ``handlers``, ``http_front``) need only this, never the server above them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Sequence

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .auth import ClientSecretStore, response_validator
from .records import ClientSecretRequest, FunctionCallOutput
from .script import FunctionCall, ScriptedResponse
from .wire import JsonDict, load_reply_audio, server_event_validator

logger = logging.getLogger(__name__)


class FakeServerCore:
    """The options, recordings and sending of ``FakeRealtimeServer`` (its base class)."""

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
        """The server's options, all keyword-only.

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

        self._silent = False
        self._script: deque[ScriptedResponse] = deque(script)
        self._secrets = ClientSecretStore()
        self._validate_secret_response = response_validator()
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._validate = server_event_validator()

    # ------------------------------------------------------------------ session.update views
    @property
    def instructions_sent(self) -> list[str]:
        """``instructions`` of every session.update that set them, in order."""
        return [u["instructions"] for u in self.session_updates if isinstance(u.get("instructions"), str)]

    @property
    def response_requests(self) -> list[JsonDict]:
        """Every ``response.create`` a client sent (its optional ``response`` overrides included), in order."""
        return [e for e in self.client_events if e.get("type") == "response.create"]

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

    async def _send_event(
        self, ws: ServerConnection, event: JsonDict, *, control: bool = False, validate: bool = True
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
            await ws.send(json.dumps(event))
