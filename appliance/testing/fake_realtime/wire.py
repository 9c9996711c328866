"""What the fake puts on the wire and reads from disk: event validation, the initial session,
the client-error event, the reply audio, and the byte ↔ ms arithmetic of pcm16 24 kHz audio."""

from __future__ import annotations

import copy
import time
import wave
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from appliance.audio.formats import MODEL_AUDIO_FORMAT, MODEL_RATE, SAMPLE_BYTES, bytes_for_ms, ms_for_samples

JsonDict = dict[str, Any]

DEFAULT_REPLY_WAV = Path(__file__).resolve().parents[2] / "defaults" / "samples" / "reply_24k.wav"
"""The answer the fake speaks unless told otherwise (about 1.6 s of espeak-ng speech)."""


def ms_of(nbytes: int) -> int:
    """Whole milliseconds of pcm16 audio at the model rate in ``nbytes`` bytes (rounded down)."""
    return int(ms_for_samples(nbytes // SAMPLE_BYTES, MODEL_RATE))


def bytes_of(ms: int) -> int:
    """pcm16 bytes of ``ms`` milliseconds at the model rate."""
    return bytes_for_ms(ms, MODEL_RATE)


def pcm_format() -> JsonDict:
    """The session's ``audio.*.format`` object (a fresh copy: sessions are mutated)."""
    return copy.deepcopy(MODEL_AUDIO_FORMAT)


def load_reply_audio(path: str | Path = DEFAULT_REPLY_WAV) -> bytes:
    """Raw pcm16 bytes of a mono 16-bit 24 kHz WAV (default: the reply shipped in the package)."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, SAMPLE_BYTES, MODEL_RATE):
            raise ValueError(f"{path}: expected mono 16-bit {MODEL_RATE} Hz")
        return wav.readframes(wav.getnframes())


def server_event_validator() -> Callable[[JsonDict], None] | None:
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


def deep_merge(base: JsonDict, update: Mapping[str, Any]) -> JsonDict:
    """Merge ``update`` into a copy of ``base``; nested dicts merge, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def initial_session(session_id: str, model: str) -> JsonDict:
    """The session a new connection starts with (what the real API reports in session.created)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
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
                "format": pcm_format(),
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
            "output": {"format": pcm_format(), "voice": "marin", "speed": 1.0},
        },
    }


def client_error(message: str, code: str, event_id: Any) -> JsonDict:
    """An ``error`` event blaming the client's event ``event_id`` (as the API words them)."""
    return {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": None,
            "event_id": event_id if isinstance(event_id, str) else None,
        },
    }
