"""All configuration, from environment variables over TOML defaults.

Precedence (highest first): constructor arguments, environment (`APPLIANCE_…`, nested with `__`),
a `.env`-style file is not read (containers pass env directly), then the TOML file named by
`APPLIANCE_CONFIG_FILE`, then the defaults written in this module: their one source.
`config/appliance.toml` documents them and is kept in step by a test.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .hardware import HardwareName, fill_unset, preset_values
from .keyfile import KeyFileError, read_key_file

DEFAULT_REALTIME_URL = "wss://api.openai.com/v1/realtime"
KEY_FILE_UNREADABLE = "key_file_unreadable"


def packaged_default(name: str) -> Path:
    """Path of a file shipped in `appliance/defaults/`."""
    return Path(str(resources.files("appliance").joinpath("defaults", name)))


def _device_spec(value: Any) -> str | int | None:
    """A device is given by index (digits) or by a name substring; empty means the system default."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def default_data_dir() -> Path:
    """Where a local run keeps its data: $XDG_STATE_HOME/appliance (the image sets /var/lib/appliance)."""
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "appliance"


class ConfigFileError(ValueError):
    """`APPLIANCE_CONFIG_FILE` names no readable TOML file; the message says which and why."""


def checked_config_file(name: str) -> Path:
    """The file `APPLIANCE_CONFIG_FILE` names, once it is known to be readable TOML: a file that was
    asked for and is missing or broken is an error, not silently the defaults."""
    path = Path(name)
    where = f"APPLIANCE_CONFIG_FILE {path}"
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigFileError(f"{where} does not exist") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{where} is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigFileError(f"{where} cannot be read by uid {os.geteuid()}: permission denied") from None
    except OSError as exc:
        raise ConfigFileError(f"{where} cannot be read: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"{where} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{where} is not valid TOML: {exc}") from None
    return path


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) or `localhost`: traffic that never leaves the machine.
    The one rule for every "loopback only" decision (settings, the page's Host check): an IP literal
    or that one name, never a name that merely starts like one (`127.evil.example`)."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _unset(value: Any) -> Any:
    """An empty value (`APPLIANCE_X=`) means the setting is not set."""
    return None if isinstance(value, str) and not value.strip() else value


def _existing_file(value: Path | None) -> Path | None:
    """A file setting that must name an existing file (the message leaves the path to the `got` part)."""
    if value is None:
        return None
    try:
        exists = value.is_file()
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot be used ({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    if not exists:
        raise ValueError("is not an existing file")
    return value


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
        classmethod(lambda cls, v: _unset(v))
    )

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must be a websocket URL starting with ws:// or wss://")
        try:
            host = urlsplit(value).hostname
        except ValueError:
            host = None
        if not host:
            raise ValueError("must name a host, e.g. wss://api.openai.com/v1/realtime")
        if value.startswith("ws://") and not is_loopback(host):
            # The API key travels in the handshake's Authorization header: in clear over ws://.
            raise ValueError(
                "ws:// would send the API key unencrypted; use wss://, or ws:// only to this machine "
                "(127.0.0.1, ::1, localhost)"
            )
        return value


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
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            value = [str(v).strip() for v in value if str(v).strip()]
        return value

    @field_validator("guardrail_url")
    @classmethod
    def _guardrail_url(cls, value: str) -> str:
        # The classifier is sent the API key: plain http:// only to this machine, as for the Realtime URL.
        try:
            parts = urlsplit(value)
        except ValueError:
            raise ValueError("must be an http(s) URL, e.g. https://api.openai.com/v1") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL naming a host, e.g. https://api.openai.com/v1")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("http:// would send the API key unencrypted; use https://, or http:// only to this "
                             "machine (127.0.0.1, ::1, localhost)")
        return value

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

    _blank_is_unset = field_validator("timezone", "agents_file", mode="before")(classmethod(lambda cls, v: _unset(v)))
    _agents_file = field_validator("agents_file")(classmethod(lambda cls, v: _existing_file(v)))

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
        classmethod(lambda cls, v: _device_spec(v))
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
        """Every configured model's threshold (keys as given in `models`)."""
        return {m: self.thresholds.get(m, self.thresholds.get(_stem(m), self.threshold)) for m in self.models}

    @field_validator("models", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list):
            value = [str(v).strip() for v in value if str(v).strip()]
            if not value:
                raise ValueError("at least one wake word model is needed")
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

    _blank_is_unset = field_validator("servers_file", mode="before")(classmethod(lambda cls, v: _unset(v)))
    _servers_file = field_validator("servers_file")(classmethod(lambda cls, v: _existing_file(v)))


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


# A token the page's login or a peripheral presents: long enough not to be guessed online.
MIN_TOKEN_CHARS = 16
TOKEN_TOO_SHORT = f"must be at least {MIN_TOKEN_CHARS} characters, e.g. from `openssl rand -hex 16`"


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
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(TOKEN_TOO_SHORT)
        return value

    @model_validator(mode="after")
    def _token_file(self) -> WebSettings:
        if self.token is None and self.token_file is not None:
            try:
                token = self.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"token_file {str(self.token_file)!r} cannot be read: {exc.strerror}") from None
            if not token:
                raise ValueError(f"token_file {str(self.token_file)!r} is empty")
            if len(token) < MIN_TOKEN_CHARS:
                raise ValueError(f"APPLIANCE_WEB__TOKEN_FILE: the token in {str(self.token_file)!r} {TOKEN_TOO_SHORT}")
            self.token = SecretStr(token)
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APPLIANCE_",
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="ignore",
    )

    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_api_key_file: Path | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY_FILE", "openai_api_key_file")
    )
    # The board: a preset fills its pins, LEDs and audio hints into fields nobody set (see hardware.py).
    hardware: HardwareName = Field("generic", validation_alias=AliasChoices("APPLIANCE_HARDWARE", "hardware"))
    # Everything the appliance stores (mute, volume, memory, timers, transcripts) lives here.
    data_dir: Path = Field(default_factory=default_data_dir)
    realtime: RealtimeSettings = RealtimeSettings()
    agent: AgentSettings = AgentSettings()
    audio: AudioSettings = AudioSettings()
    wake: WakeSettings = WakeSettings()
    button: ButtonSettings = ButtonSettings()
    leds: LedSettings = LedSettings()
    session: SessionSettings = SessionSettings()
    earcons: EarconSettings = EarconSettings()
    mcp: McpSettings = McpSettings()
    transcripts: TranscriptSettings = TranscriptSettings()
    log: LogSettings = LogSettings()
    web: WebSettings = WebSettings()
    health: HealthSettings = HealthSettings()  # after `web`: its check below reads the web settings

    @field_validator("health")
    @classmethod
    def _token_off_loopback(cls, health: HealthSettings, info: ValidationInfo) -> HealthSettings:
        """The page and API on a non-loopback address need a token (the error names the address's variable)."""
        web = info.data.get("web")
        host = health.address.rpartition(":")[0]
        if health.enabled and isinstance(web, WebSettings) and web.enabled and web.token is None \
                and not is_loopback(host.strip("[]")):
            raise ValueError(
                f"the device page and API on {health.address!r} (not a loopback address) need a token: "
                "set APPLIANCE_WEB__TOKEN or APPLIANCE_WEB__TOKEN_FILE, or APPLIANCE_WEB__ENABLED=false"
            )
        return health

    @field_validator("openai_api_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _hardware_preset(self) -> Settings:
        """Fill the board's pins, LEDs and audio hints into the fields nobody set explicitly."""
        for group, values in preset_values(self.hardware, self.audio.backend).items():
            setattr(self, group, fill_unset(getattr(self, group), values))
        return self

    @model_validator(mode="after")
    def _key_file(self) -> Settings:
        if self.openai_api_key is None and self.openai_api_key_file is not None:
            try:
                key = read_key_file(self.openai_api_key_file)
            except KeyFileError as exc:
                # Its own error type, so `appliance run` can wait for a permission fixed on the host.
                kind = KEY_FILE_UNREADABLE if exc.retryable else "key_file"
                raise PydanticCustomError(kind, "{text}", {"text": str(exc)}) from None
            self.openai_api_key = SecretStr(key)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        override = os.environ.get("APPLIANCE_CONFIG_FILE")
        if not override:
            return (init_settings, env_settings)
        toml_file = checked_config_file(override)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain data, secrets replaced by a marker."""
        data = self.model_dump(mode="json")
        data["openai_api_key"] = "********" if self.openai_api_key else None
        data["web"]["token"] = "********" if self.web.token else None
        return data
