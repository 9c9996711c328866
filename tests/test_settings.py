from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.conversation.session import url_with_model
from appliance.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=60
    )


def test_defaults_come_from_packaged_toml(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.realtime.model == "gpt-realtime"
    assert s.realtime.voice == "ash"
    assert s.realtime.transcription_model == "gpt-4o-mini-transcribe"
    assert s.wake.models == ["hey_jarvis"]
    assert s.session.idle_timeout_s == 8
    assert s.button.pin is None and s.leds.pin is None
    assert "voice assistant" in s.agent.resolved_instructions()


def test_environment_overrides_nested_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_WAKE__MODELS", "hey_jarvis, alexa")
    monkeypatch.setenv("APPLIANCE_WAKE__THRESHOLD", "0.7")
    monkeypatch.setenv("APPLIANCE_AUDIO__INPUT_DEVICE", "2")
    monkeypatch.setenv("APPLIANCE_AUDIO__OUTPUT_DEVICE", "USB Audio")
    monkeypatch.setenv("APPLIANCE_REALTIME__TURN_DETECTION", "server_vad")
    monkeypatch.setenv("APPLIANCE_LOG__LEVEL", "debug")
    s = Settings()
    assert s.wake.models == ["hey_jarvis", "alexa"]
    assert s.wake.threshold == 0.7
    assert s.audio.input_device == 2
    assert s.audio.output_device == "USB Audio"
    assert s.realtime.turn_detection == "server_vad"
    assert s.log.level == "DEBUG"


def test_config_file_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    f = tmp_path / "site.toml"
    f.write_text('[realtime]\nvoice = "verse"\n[session]\nidle_timeout_s = 12\n')
    monkeypatch.setenv("APPLIANCE_CONFIG_FILE", str(f))
    monkeypatch.setenv("APPLIANCE_SESSION__IDLE_TIMEOUT_S", "5")
    s = Settings()
    assert s.realtime.voice == "verse"
    assert s.realtime.model == "gpt-realtime"  # untouched defaults survive
    assert s.session.idle_timeout_s == 5  # environment beats the file


def test_api_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("sk-from-file\n")
    monkeypatch.setenv("OPENAI_API_KEY_FILE", str(f))
    s = Settings()
    assert s.openai_api_key is not None and s.openai_api_key.get_secret_value() == "sk-from-file"


def test_url_gets_model_query() -> None:
    assert url_with_model("wss://api.openai.com/v1/realtime", "gpt-realtime") == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )
    assert url_with_model("ws://127.0.0.1:9/v1/realtime?model=x&a=1", "y") == "ws://127.0.0.1:9/v1/realtime?model=x&a=1"


def test_invalid_settings_exit_2_naming_each_field() -> None:
    result = run_cli(
        "config",
        env={
            "APPLIANCE_WAKE__THRESHOLD": "3",
            "APPLIANCE_LOG__FORMAT": "xml",
            "APPLIANCE_REALTIME__URL": "https://example.invalid",
            "APPLIANCE_LEDS__RED_PIN": "5",
        },
    )
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err
    assert "APPLIANCE_WAKE__THRESHOLD" in err and "less than 1" in err
    assert "APPLIANCE_LOG__FORMAT" in err and "'json' or 'text'" in err
    assert "APPLIANCE_REALTIME__URL" in err and "ws://" in err
    assert "APPLIANCE_LEDS" in err and "green_pin" in err


def test_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("config", env={"OPENAI_API_KEY_FILE": str(tmp_path / "missing")})
    assert result.returncode == 2
    assert "OPENAI_API_KEY_FILE" in result.stderr and "cannot be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_masks_the_key() -> None:
    secret = "sk-very-secret-value-123"
    result = run_cli("config", env={"OPENAI_API_KEY": secret})
    assert result.returncode == 0
    assert secret not in result.stdout and secret not in result.stderr
    data = json.loads(result.stdout)
    assert data["openai_api_key"] == "********"
    assert data["realtime"]["model"] == "gpt-realtime"


def test_run_without_key_says_how_to_set_it() -> None:
    result = run_cli("run")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr and "OPENAI_API_KEY_FILE" in result.stderr
    assert "Traceback" not in result.stderr


def test_per_model_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_WAKE__MODELS", "hey_jarvis,alexa,/models/custom_word.tflite")
    monkeypatch.setenv("APPLIANCE_WAKE__THRESHOLDS", "alexa:0.7, custom_word:0.35")
    s = Settings()
    assert s.wake.threshold_for() == {"hey_jarvis": 0.5, "alexa": 0.7, "/models/custom_word.tflite": 0.35}


def test_bad_per_model_threshold_is_named() -> None:
    result = run_cli("config", env={"APPLIANCE_WAKE__THRESHOLDS": "alexa=0.7"})
    assert result.returncode == 2
    assert "APPLIANCE_WAKE__THRESHOLDS" in result.stderr and "name:value" in result.stderr


def test_missing_wake_model_file_is_named_and_exits_2() -> None:
    result = run_cli("run", env={"OPENAI_API_KEY": "sk-x", "APPLIANCE_WAKE__MODELS": "/nowhere/kitchen_word.tflite"})
    assert result.returncode == 2
    assert "/nowhere/kitchen_word.tflite" in result.stderr
    assert "hey_jarvis" in result.stderr  # lists what is bundled
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8080/v1/realtime", "ws://127.3.2.1/x", "ws://[::1]:9/v1",
                                 "ws://localhost:9/v1", "ws://LOCALHOST/v1", "wss://api.openai.com/v1/realtime",
                                 "wss://10.0.0.5/v1"])
def test_url_encrypted_or_loopback_is_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("APPLIANCE_REALTIME__URL", url)
    assert Settings().realtime.url == url


@pytest.mark.parametrize("url", ["ws://api.openai.com/v1/realtime", "ws://192.168.1.5:8080/v1",
                                 "ws://localhost.example.com/v1", "ws://127.0.0.1.nip.io/v1", "ws://[::2]/v1",
                                 "ws:///v1/realtime"])
def test_clear_text_url_off_this_machine_is_refused(url: str) -> None:
    result = run_cli("config", env={"APPLIANCE_REALTIME__URL": url, "OPENAI_API_KEY": "sk-secret-never-shown-123"})
    assert result.returncode == 2, result.stdout
    assert "APPLIANCE_REALTIME__URL" in result.stderr
    assert "Traceback" not in result.stderr and "sk-secret-never-shown-123" not in result.stderr


@pytest.mark.parametrize("variable", ["APPLIANCE_WEB__TOKEN_FILE", "APPLIANCE_MQTT__PASSWORD_FILE"])
def test_a_secret_file_that_is_not_text_is_a_clear_error(tmp_path: Path, variable: str) -> None:
    """A token or password file written as binary (a copied key blob): named, no decoder jargon."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"\xff\xfe\x00binary-token-0123456789abcdef")
    env = {variable: str(secret), "OPENAI_API_KEY": "sk-test"}
    if "MQTT" in variable:
        env.update(APPLIANCE_MQTT__URL="mqtt://127.0.0.1:1883", APPLIANCE_MQTT__USERNAME="kitchen")
    result = run_cli("config", env=env)
    assert result.returncode == 2, result.stdout
    assert f"{str(secret)!r} cannot be read: not UTF-8 text" in result.stderr, result.stderr
    assert "codec" not in result.stderr and "Traceback" not in result.stderr
