"""The session's configuration in the SDK's terms, all from settings: the endpoint URL, voice, model,
transcription, turn detection, noise reduction and speed (`audio.input` / `audio.output`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..audio.formats import MODEL_AUDIO_FORMAT
from ..settings import RealtimeSettings, Settings

if TYPE_CHECKING:  # the SDK itself is imported when a conversation starts (see sdk.py)
    from agents.realtime.config import (
        RealtimeAudioInputConfig,
        RealtimeAudioOutputConfig,
        RealtimeInputAudioTranscriptionConfig,
        RealtimeSessionModelSettings,
        RealtimeTurnDetectionConfig,
    )


def url_with_model(url: str, model: str) -> str:
    """The SDK uses an overridden URL verbatim; the endpoint needs `?model=`."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("model", model)
    return urlunsplit(parts._replace(query=urlencode(query)))


def turn_detection_config(rt: RealtimeSettings) -> RealtimeTurnDetectionConfig:
    """The turn detector's settings in the nested form the SDK (and the GA API) expects."""
    config: RealtimeTurnDetectionConfig = {"type": rt.turn_detection, "interrupt_response": rt.interrupt_response}
    if rt.turn_detection == "semantic_vad":
        config["eagerness"] = rt.eagerness
    else:
        config["threshold"] = rt.vad_threshold
        config["prefix_padding_ms"] = rt.prefix_padding_ms
        config["silence_duration_ms"] = rt.silence_duration_ms
    return config


def model_settings(
    settings: Settings, push_to_talk: bool = False, voice: str | None = None
) -> RealtimeSessionModelSettings:
    """Voice, model, transcription, turn detection, noise reduction and speed, all from settings,
    as `audio.input` / `audio.output` (the SDK's current form, not the old flat one)."""
    rt = settings.realtime
    transcription: RealtimeInputAudioTranscriptionConfig = {"model": rt.transcription_model}
    if rt.transcription_language:
        transcription["language"] = rt.transcription_language
    audio_input: RealtimeAudioInputConfig = {
        "format": MODEL_AUDIO_FORMAT,  # type: ignore[typeddict-item]
        "transcription": transcription,
        "turn_detection": None if push_to_talk else turn_detection_config(rt),
        "noise_reduction": None if rt.noise_reduction == "none" else {"type": rt.noise_reduction},
    }
    audio_output: RealtimeAudioOutputConfig = {
        "format": MODEL_AUDIO_FORMAT,  # type: ignore[typeddict-item]
        "voice": voice or rt.voice,
        "speed": rt.speed,
    }
    return {"model_name": rt.model, "audio": {"input": audio_input, "output": audio_output}}
