"""Voice and model settings reach the SDK in its nested `audio.input` / `audio.output` form."""

from __future__ import annotations

from appliance.conversation.session import model_settings
from tests.inproc import make_settings


def test_semantic_vad_settings_are_nested() -> None:
    settings = make_settings(realtime={"voice": "marin", "eagerness": "high", "speed": 1.2,
                                       "transcription_language": "de", "noise_reduction": "near_field"})
    config = model_settings(settings)
    audio = config["audio"]
    assert audio["output"]["voice"] == "marin" and audio["output"]["speed"] == 1.2
    assert audio["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe", "language": "de"}
    assert audio["input"]["turn_detection"] == {"type": "semantic_vad", "interrupt_response": True,
                                                "eagerness": "high"}
    assert audio["input"]["noise_reduction"] == {"type": "near_field"}
    assert "input_audio_format" not in config and "modalities" not in config


def test_server_vad_carries_its_thresholds_and_push_to_talk_none() -> None:
    settings = make_settings(realtime={"turn_detection": "server_vad", "vad_threshold": 0.7,
                                       "silence_duration_ms": 800, "interrupt_response": False})
    detection = model_settings(settings)["audio"]["input"]["turn_detection"]
    assert detection == {"type": "server_vad", "interrupt_response": False, "threshold": 0.7,
                         "prefix_padding_ms": 300, "silence_duration_ms": 800}
    assert model_settings(settings, push_to_talk=True)["audio"]["input"]["turn_detection"] is None
