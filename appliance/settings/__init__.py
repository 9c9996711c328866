"""All configuration, from environment variables over TOML defaults.

Precedence (highest first): constructor arguments, environment (`APPLIANCE_…`, nested with `__`),
a `.env`-style file is not read (containers pass env directly), then the TOML file named by
`APPLIANCE_CONFIG_FILE`, then the defaults written in `groups.py`: their one source.
`config/appliance.toml` documents them and is kept in step by a test.

Where things live: `rules.py` the checks values share (loopback, URLs, tokens, blanks), `files.py`
the files read (config file, key and token files, packaged defaults), `groups.py` one class per
`[group]`, `root.py` the `Settings` tree. Import from here: `from appliance.settings import Settings`.
"""

from .files import (
    KEY_FILE_UNREADABLE,
    ConfigFileError,
    checked_config_file,
    default_data_dir,
    packaged_default,
)
from .groups import (
    DEFAULT_REALTIME_URL,
    MQTT_ENTITIES,
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
    SettingsGroup,
    TranscriptSettings,
    WakeSettings,
    WebSettings,
)
from .root import Settings
from .rules import MIN_TOKEN_CHARS, TOKEN_TOO_SHORT, is_loopback

__all__ = [
    "DEFAULT_REALTIME_URL",
    "MQTT_ENTITIES",
    "KEY_FILE_UNREADABLE",
    "MIN_TOKEN_CHARS",
    "TOKEN_TOO_SHORT",
    "AgentSettings",
    "AudioSettings",
    "ButtonSettings",
    "ConfigFileError",
    "EarconSettings",
    "HealthSettings",
    "LedSettings",
    "LogSettings",
    "McpSettings",
    "MqttSettings",
    "RealtimeSettings",
    "SessionSettings",
    "Settings",
    "SettingsGroup",
    "TranscriptSettings",
    "WakeSettings",
    "WebSettings",
    "checked_config_file",
    "default_data_dir",
    "is_loopback",
    "packaged_default",
]
