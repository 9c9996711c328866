"""`Settings`: the whole tree, read from the environment over an optional TOML file over the
defaults, with the checks that span groups (a token off loopback) and the board's preset filled in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ..hardware import HardwareName, fill_unset, preset_values
from .files import api_key_from_file, checked_config_file, default_data_dir
from .groups import (
    AgentSettings,
    AudioSettings,
    ButtonSettings,
    EarconSettings,
    HealthSettings,
    LedSettings,
    LogSettings,
    McpSettings,
    MqttSettings,
    RealtimeSettings,
    SessionSettings,
    TranscriptSettings,
    WakeSettings,
    WebSettings,
)
from .rules import is_loopback, unset


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
    mqtt: MqttSettings = MqttSettings()
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
        return unset(value)

    @model_validator(mode="after")
    def _hardware_preset(self) -> Settings:
        """Fill the board's pins, LEDs and audio hints into the fields nobody set explicitly."""
        for group, values in preset_values(self.hardware, self.audio.backend).items():
            setattr(self, group, fill_unset(getattr(self, group), values))
        return self

    @model_validator(mode="after")
    def _key_file(self) -> Settings:
        if self.openai_api_key is None and self.openai_api_key_file is not None:
            self.openai_api_key = api_key_from_file(self.openai_api_key_file)
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
        data["mqtt"]["password"] = "********" if self.mqtt.password else None
        return data
