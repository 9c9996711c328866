"""One client connection: its session, its input-audio timeline and the energy VAD that turns
that audio into user turns (speech_started/stopped, committed items, canned transcriptions)."""

from __future__ import annotations

import copy

import numpy as np
from websockets.asyncio.server import ServerConnection

from .core import FakeServerCore
from .records import FunctionCallOutput
from .responses import ActiveResponse, cancel_response, start_response
from .wire import JsonDict, bytes_of, client_error, initial_session, ms_of

VAD_FRAME_MS = 10
"""The energy detector's frame: one RMS decision per 10 ms."""


class Connection:
    """Per-connection protocol state."""

    def __init__(self, server: FakeServerCore, ws: ServerConnection, info: JsonDict, *, index: int) -> None:
        self.server = server
        self.ws = ws
        self.info = info
        self.index = index  # into server.connections
        self.session: JsonDict = initial_session(server._new_id("sess"), info.get("model") or "gpt-realtime")
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
        self.response: ActiveResponse | None = None
        self.call_ids: dict[str, str] = {}  # call_id → function name, for the calls this server made
        self.outputs_awaiting_response: list[FunctionCallOutput] = []
        self.tool_called_this_turn = False

    # ----------------------------------------------------------------- helpers
    @property
    def turn_detection(self) -> JsonDict | None:
        td = self.session.get("audio", {}).get("input", {}).get("turn_detection")
        return td if isinstance(td, dict) else None

    @property
    def audio_ms(self) -> int:
        return ms_of(self.audio_bytes_total)

    def end_of_turn_silence_ms(self) -> int:
        td = self.turn_detection or {}
        value = td.get("silence_duration_ms")
        if td.get("type") == "server_vad" and isinstance(value, int) and value > 0:
            return value
        return self.server.silence_ms_to_end_turn

    async def send(self, event: JsonDict) -> None:
        await self.server._send_event(self.ws, event)

    async def send_client_error(self, message: str, code: str, event_id: object) -> None:
        await self.send(client_error(message, code, event_id))

    def add_item(self, item: JsonDict) -> str | None:
        previous = self.last_item_id
        self.items[item["id"]] = item
        self.last_item_id = item["id"]
        return previous

    def cancel_tasks(self) -> None:
        if self.response is not None and self.response.task is not None:
            self.response.task.cancel()

    # ----------------------------------------------------------------- input audio
    def append_audio(self, audio: bytes) -> None:
        self.server.received_audio += audio
        self.audio += audio
        self.audio_bytes_total += len(audio)
        self.buffer_bytes += len(audio)
        self.pending_vad += audio

    def reset_speech(self) -> None:
        self.in_speech = False
        self.speech_item_id = None
        self.pending_vad.clear()

    async def run_vad(self) -> None:
        """Feed whole 10 ms frames of the pending audio to the energy detector."""
        frame_bytes = bytes_of(VAD_FRAME_MS)
        # Timeline position of the first byte still waiting in pending_vad.
        pos_ms = ms_of(self.audio_bytes_total - len(self.pending_vad))
        while len(self.pending_vad) >= frame_bytes:
            frame = np.frombuffer(bytes(self.pending_vad[:frame_bytes]), dtype="<i2").astype(np.float64)
            del self.pending_vad[:frame_bytes]
            rms = float(np.sqrt(np.mean(frame * frame)))
            if rms >= self.server.vad_threshold:
                self.silence_ms = 0
                if not self.in_speech:
                    self.in_speech = True
                    self.speech_start_ms = pos_ms
                    self.speech_ms = 0
                    self.speech_item_id = self.server._new_id("item")
                    await self._speech_started()
                self.speech_ms += VAD_FRAME_MS
            elif self.in_speech:
                self.silence_ms += VAD_FRAME_MS
                if self.silence_ms >= self.end_of_turn_silence_ms():
                    await self._speech_stopped(end_ms=pos_ms + VAD_FRAME_MS)
            pos_ms += VAD_FRAME_MS

    async def _speech_started(self) -> None:
        assert self.speech_item_id is not None
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": self.speech_start_ms,
                "item_id": self.speech_item_id,
            }
        )
        td = self.turn_detection or {}
        if td.get("interrupt_response", True):
            await cancel_response(self, reason="turn_detected")

    async def _speech_stopped(self, end_ms: int) -> None:
        item_id = self.speech_item_id or self.server._new_id("item")
        self.in_speech = False
        self.speech_item_id = None
        await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": item_id})
        if self.speech_ms < self.server.min_speech_ms:
            return  # a blip: no user turn
        td = self.turn_detection or {}
        turn_audio = bytes(self.audio[bytes_of(self.speech_start_ms) : bytes_of(end_ms)])
        await self.commit_user_turn(
            item_id=item_id,
            audio=turn_audio,
            start_ms=self.speech_start_ms,
            end_ms=end_ms,
            respond=bool(td.get("create_response", True)),
        )

    async def commit_user_turn(self, *, item_id: str, audio: bytes, start_ms: int, end_ms: int, respond: bool) -> None:
        """Turn the buffered audio into a user message item with the canned transcription."""
        server = self.server
        self.buffer_bytes = 0
        self.tool_called_this_turn = False
        item: JsonDict = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = self.add_item(item)
        server.user_turns.append({"item_id": item_id, "audio": audio, "start_ms": start_ms, "end_ms": end_ms})
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        await self.send({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous})
        await self.send({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous})
        item["content"][0]["transcript"] = server.user_transcript
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": server.user_transcript,
                "usage": {"type": "duration", "seconds": round(max(end_ms - start_ms, 0) / 1000, 3)},
            }
        )
        if respond:
            await start_response(self)
