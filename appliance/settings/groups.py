"""The settings groups, one class each: `APPLIANCE_<GROUP>__<NAME>` (a `[group]` table in TOML).

A new group is one class here (a `SettingsGroup`, its defaults written in place, its checks from
`rules.py`) and one field on `Settings` in `root.py`; `config/appliance.toml` lists its defaults.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from .files import packaged_default, secret_from_file, token_from_file
from .rules import (
    comma_list,
    device_spec,
    existing_file,
    is_loopback,
    keyed_http_url,
    long_enough_token,
    unset,
    websocket_url,
)

DEFAULT_REALTIME_URL = "wss://api.openai.com/v1/realtime"


def _stem(spec: str) -> str:
    return Path(spec).stem


class SettingsGroup(BaseModel):
    """A group of settings (`APPLIANCE_<GROUP>__<NAME>`). No infinities or NaNs: every number here
    is a time, a size or a level that must be finite."""

    model_config = ConfigDict(allow_inf_nan=False)


class RealtimeSettings(SettingsGroup):
    url: str = DEFAULT_REALTIME_URL
    model: str = "gpt-realtime"
    voice: str = "ash"
    transcription_model: str = "gpt-4o-mini-transcribe"
    turn_detection: Literal["semantic_vad", "server_vad"] = "semantic_vad"
    interrupt_response: bool = True
    noise_reduction: Literal["near_field", "far_field", "none"] = "far_field"
    connect_timeout_s: float = Field(10.0, gt=0)
    transcription_language: str | None = Field(None, description="ISO-639-1 hint, e.g. en; unset = detect")
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"  # semantic_vad
    vad_threshold: float = Field(0.5, ge=0, le=1)  # server_vad
    prefix_padding_ms: int = Field(300, ge=0)  # server_vad
    silence_duration_ms: int = Field(500, ge=0)  # server_vad
    speed: float = Field(1.0, ge=0.25, le=1.5, description="speaking speed of the answer")

    _blank_language = field_validator("transcription_language", mode="before")(
        classmethod(lambda cls, v: unset(v))
    )

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        return websocket_url(value)


class AgentSettings(SettingsGroup):
    name: str = "Assistant"
    instructions: str | None = None
    instructions_file: Path = Field(default_factory=lambda: packaged_default("instructions.md"))
    # IANA name (e.g. Europe/Berlin) for the time tool and timers; unset = the system's.
    timezone: str | None = None
    # Specialists and handoffs (config/agents.toml); unset = one agent.
    agents_file: Path | None = None
    tool_timeout_s: float = Field(10.0, gt=0, description="a tool (built-in or MCP) that takes longer fails")
    weather_url: str = "https://wttr.in"  # get_weather's keyless forecast service
    timer_ring_s: float = Field(60.0, gt=0, description="a due timer rings at most this long")
    # Output guardrails: phrases (comma-separated) the agent must never say.
    guardrail_phrases: Annotated[list[str], NoDecode] = []
    # Topics (comma-separated) a small classifier model checks the answers against; empty = none.
    guardrail_topics: Annotated[list[str], NoDecode] = []
    guardrail_model: str = "gpt-4o-mini"
    guardrail_url: str = "https://api.openai.com/v1"  # an OpenAI-compatible Chat Completions endpoint

    @field_validator("guardrail_phrases", "guardrail_topics", mode="before")
    @classmethod
    def _phrases(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("guardrail_url")
    @classmethod
    def _guardrail_url(cls, value: str) -> str:
        # The classifier is sent the API key: plain http:// only to this machine, as for the Realtime URL.
        return keyed_http_url(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from None
        return value or None

    _blank_is_unset = field_validator("timezone", "agents_file", mode="before")(classmethod(lambda cls, v: unset(v)))
    _agents_file = field_validator("agents_file")(classmethod(lambda cls, v: existing_file(v)))

    def resolved_instructions(self) -> str:
        if self.instructions:
            return self.instructions
        return self.instructions_file.read_text(encoding="utf-8").strip()

    @model_validator(mode="after")
    def _instructions_readable(self) -> AgentSettings:
        if self.instructions:
            return self
        try:
            is_file = self.instructions_file.is_file()
        except OSError as exc:  # e.g. a name too long for the filesystem
            raise ValueError(f"APPLIANCE_AGENT__INSTRUCTIONS_FILE cannot be used: {exc.strerror}") from None
        if not is_file:
            raise ValueError(f"APPLIANCE_AGENT__INSTRUCTIONS_FILE {self.instructions_file} is not a file")
        return self


class AudioSettings(SettingsGroup):
    # "sounddevice": PortAudio over ALSA; "pulse": PulseAudio / PipeWire directly (its echo-cancel source).
    backend: Literal["sounddevice", "pulse"] = "sounddevice"
    pulse_latency_ms: int = Field(40, ge=5, le=500, description="pulse: the server-side buffer each stream asks for")
    input_device: Annotated[str | int | None, NoDecode] = None
    output_device: Annotated[str | int | None, NoDecode] = None
    input_channel: int = Field(0, ge=0, description="channel of a multi-channel mic to use")
    input_rate: int | None = Field(None, ge=8000, le=192000, description="force a capture rate")
    output_rate: int | None = Field(None, ge=8000, le=192000, description="force a playback rate")
    block_ms: int = Field(20, ge=5, le=100, description="microphone block")
    output_block_ms: int = Field(10, ge=5, le=100, description="speaker block: smaller flushes faster")
    echo: Literal["none", "gate", "aec"] = "gate"
    gate_tail_ms: int = Field(300, ge=0)
    aec_tail_ms: int = Field(200, ge=20, le=1000, description="echo path length the canceller models")
    aec_reference_delay_ms: int = Field(0, ge=0, le=500, description="playback-to-capture delay to skip")
    playback_start_ms: int = Field(20, ge=0, description="audio buffered before playback starts")
    playback_max_s: float = Field(120.0, gt=0, description="bound of the playback buffer")
    volume: int = Field(100, ge=0, le=100, description="playback volume until one is set (then kept)")

    _spec = field_validator("input_device", "output_device", mode="before")(
        classmethod(lambda cls, v: device_spec(v))
    )


class WakeSettings(SettingsGroup):
    models: Annotated[list[str], NoDecode] = ["hey_jarvis"]
    threshold: float = Field(0.5, gt=0, lt=1)
    # Per-model overrides, "name:value,name:value" (e.g. "alexa:0.6").
    thresholds: Annotated[dict[str, float], NoDecode] = {}
    refractory_s: float = Field(2.0, ge=0)
    # Combine bundled models with their noise-trained verifier where one ships (hey_jarvis).
    verifier: bool = True
    preroll_lookback_ms: int = Field(300, ge=0, le=2000)
    # Enrolled voices (appliance wakeword enroll) and learning from mistakes (triggers/learning.py):
    # "personal" (default) teaches only the personal verifiers, so a voice not enrolled wakes as before;
    # "all" also learns missed wakes and lets learned false wakes veto the stock rule; "off" learns nothing.
    learning: Literal["off", "personal", "all"] = "personal"
    keep_enrolment_audio: bool = False  # keep the enrolment takes' audio in the data directory

    @field_validator("thresholds", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs: dict[str, Any] = {}
            for part in filter(None, (p.strip() for p in value.split(","))):
                name, sep, number = part.rpartition(":")
                if not sep or not name.strip():
                    raise ValueError(f"{part!r} is not name:value")
                pairs[name.strip()] = number.strip()
            return pairs
        return value

    @field_validator("thresholds")
    @classmethod
    def _in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for name, threshold in value.items():
            if not 0 < threshold < 1:
                raise ValueError(f"threshold for {name} must be between 0 and 1")
        return value

    def threshold_for(self) -> dict[str, float]:
        """Every configured model's threshold (keys as given in `models`). `threshold` is openWakeWord's:
        a micro: model not named in `thresholds` keeps the cutoff its manifest ships (left out here)."""
        return {m: self.thresholds.get(m, self.thresholds.get(_stem(m), self.threshold)) for m in self.models
                if not m.startswith("micro:") or m in self.thresholds or _stem(m) in self.thresholds}

    @field_validator("models", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list):
            value = [str(v).strip() for v in value if str(v).strip()]
            if not value:
                raise ValueError("at least one wake word model is needed")
            from ..triggers.wake_models import is_micro, micro_spec_problem

            for problem in (micro_spec_problem(v) for v in value if is_micro(v)):
                if problem:
                    raise ValueError(problem)
        return value


class ButtonSettings(SettingsGroup):
    pin: int | None = Field(None, ge=0, le=53)
    mode: Literal["toggle", "hold"] = "toggle"
    in_conversation: Literal["end", "interrupt"] = "end"
    pull_up: bool = True
    bounce_s: float = Field(0.05, ge=0)
    hold_s: float = Field(2.0, gt=0)


class LedSettings(SettingsGroup):
    # "gpio": a single or an RGB LED on GPIO pins; "apa102": APA102 / DotStar pixels (voice HATs).
    type: Literal["gpio", "apa102"] = "gpio"
    pin: int | None = Field(None, ge=0, le=53, description="single LED")
    pwm: bool = False
    red_pin: int | None = Field(None, ge=0, le=53)
    green_pin: int | None = Field(None, ge=0, le=53)
    blue_pin: int | None = Field(None, ge=0, le=53)
    active_high: bool = True
    # apa102: how many pixels, their global brightness (the protocol's 5 bits), and the wiring: an SPI
    # bus/device, or any two pins (data_pin + clock_pin) clocked in software; an optional power enable.
    count: int = Field(3, ge=1, le=1024)
    brightness: int = Field(8, ge=0, le=31)
    spi_bus: int = Field(0, ge=0, le=6)
    spi_device: int = Field(0, ge=0, le=2)
    data_pin: int | None = Field(None, ge=0, le=53)
    clock_pin: int | None = Field(None, ge=0, le=53)
    power_pin: int | None = Field(None, ge=0, le=53, description="driven high while the pixels are in use")
    fps: int = Field(30, ge=1, le=100, description="animation frame rate")
    idle: Literal["off", "breath"] = "off"

    @model_validator(mode="after")
    def _rgb_complete(self) -> LedSettings:
        rgb = [self.red_pin, self.green_pin, self.blue_pin]
        if any(p is not None for p in rgb) and not all(p is not None for p in rgb):
            raise ValueError("an RGB LED needs red_pin, green_pin and blue_pin")
        if (self.data_pin is None) != (self.clock_pin is None):
            raise ValueError("software-clocked pixels need both data_pin and clock_pin")
        return self


class EarconSettings(SettingsGroup):
    wake: bool = True
    done: bool = True
    error: bool = True
    volume: float = Field(0.6, ge=0, le=1)


class SessionSettings(SettingsGroup):
    idle_timeout_s: float = Field(8.0, gt=0)
    max_duration_s: float = Field(300.0, gt=0)
    error_backoff_s: float = Field(2.0, ge=0)
    error_backoff_max_s: float = Field(60.0, ge=0)


class McpSettings(SettingsGroup):
    # A JSON file in the common `mcpServers` form; values may use ${ENV_VAR}. Unset = no MCP servers.
    servers_file: Path | None = None
    connect_timeout_s: float = Field(10.0, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0, description="longest wait between reconnection attempts")

    _blank_is_unset = field_validator("servers_file", mode="before")(classmethod(lambda cls, v: unset(v)))
    _servers_file = field_validator("servers_file")(classmethod(lambda cls, v: existing_file(v)))


class TranscriptSettings(SettingsGroup):
    enabled: bool = False  # off by default: what is said in the house stays unwritten
    retention_days: float = Field(30.0, gt=0)
    retention_mb: float = Field(50.0, gt=0)


class LogSettings(SettingsGroup):
    format: Literal["json", "text"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # At DEBUG, also log every websocket frame (transcripts, audio); secrets are masked regardless.
    websocket_frames: bool = False

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class HealthSettings(SettingsGroup):
    enabled: bool = True
    address: str = "127.0.0.1:9090"
    stale_after_s: float = Field(10.0, gt=0)

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        # Port 0: any free port (tests; the log line names the one taken).
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:9090")
        return value


class WebSettings(SettingsGroup):
    """The device page and API, served on the health listener (`health.address`)."""

    enabled: bool = True
    token: SecretStr | None = None
    token_file: Path | None = None
    browser_talk: bool = False
    client_queue: int = Field(256, ge=8, le=10000, description="events kept for a slow API client")
    max_clients: int = Field(16, ge=1, le=1000, description="WebSocket clients at once")

    @field_validator("token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: Any) -> Any:
        return unset(value)

    @field_validator("token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            long_enough_token(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _token_file(self) -> WebSettings:
        if self.token is None and self.token_file is not None:
            self.token = token_from_file(self.token_file, "APPLIANCE_WEB__TOKEN_FILE")
        return self


# -- MQTT: Home Assistant discovery, fleet topics, one answer per home (appliance/integrations/) ---------
MQTT_ENTITIES = ("state", "muted", "volume", "talk", "wake_score", "timers", "announce")
_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def default_device_name() -> str:
    """The host name, made topic-safe (MQTT topic levels, Home Assistant node ids, ACL `%u`)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname().split(".")[0]).strip("-")
    return name[:64] or "appliance"


class MqttSettings(SettingsGroup):
    """Unset `url`: no MQTT at all (the client library is not even imported)."""

    url: str | None = None  # mqtt://host[:port] only to this machine; mqtts://host[:port] otherwise
    ca_file: Path | None = None  # mqtts: the CA that signed the broker's certificate (unset = the system's)
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    home: str | None = None  # devices with the same home answer a wake once (arbitration); unset = no arbitration
    device: str = Field(default_factory=default_device_name)
    site: str = "default"
    keepalive_s: int = Field(30, ge=5, le=3600, description="the broker declares the device gone after 1.5 x this")
    reconnect_max_s: float = Field(60.0, gt=0, description="longest wait between reconnection attempts")
    discovery_prefix: str = "homeassistant"
    entities: Annotated[list[str], NoDecode] = list(MQTT_ENTITIES)
    publish_transcripts: bool = False  # off: what is said in the house stays off the broker
    arbitration_window_ms: int = Field(100, ge=10, le=1000, description="how long a wake waits for other claims")

    _blank_is_unset = field_validator("url", "ca_file", "username", "password", "password_file", "home",
                                      mode="before")(classmethod(lambda cls, v: unset(v)))
    _ca_file = field_validator("ca_file", "password_file")(classmethod(lambda cls, v: existing_file(v)))

    @field_validator("url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError as exc:
            raise ValueError(f"is not a broker URL ({exc})") from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must be mqtts://HOST[:PORT] (or mqtt://HOST[:PORT] to this machine)")
        if parts.scheme == "mqtt" and not is_loopback(parts.hostname):
            # The password and every command would cross the network in clear.
            raise ValueError("mqtt:// is unencrypted: use mqtts://, or mqtt:// only to 127.0.0.1, ::1 or localhost")
        if parts.username or parts.password:
            raise ValueError("put the user in APPLIANCE_MQTT__USERNAME and the password in …__PASSWORD_FILE")
        return value

    @field_validator("home", "device", "site")
    @classmethod
    def _topic_safe(cls, value: str | None) -> str | None:
        if value is not None and not _TOPIC_NAME.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits, '_' or '-' (it is a topic level)")
        return value

    @field_validator("discovery_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "+#") or value.startswith("/") or value.endswith("/"):
            raise ValueError("must be a topic without wildcards or leading/trailing '/', e.g. homeassistant")
        return value

    @field_validator("entities", mode="before")
    @classmethod
    def _entity_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            unknown = sorted(set(map(str, value)) - set(MQTT_ENTITIES))
            if unknown:
                raise ValueError(f"unknown entities {unknown}; choose from {', '.join(MQTT_ENTITIES)}")
        return value

    @model_validator(mode="after")
    def _password_file(self) -> MqttSettings:
        if self.password is None and self.password_file is not None:
            self.password = secret_from_file(self.password_file, "password_file")
        return self
