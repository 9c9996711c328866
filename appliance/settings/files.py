"""The files settings come from or point at: the TOML file `APPLIANCE_CONFIG_FILE` names, the
secrets read from `*_FILE` settings (API key, web token), the packaged defaults and the data dir.
Each failure is a one-line message naming the variable and the file, never a traceback."""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path

from pydantic import SecretStr
from pydantic_core import PydanticCustomError

from ..keyfile import KeyFileError, read_key_file
from .rules import MIN_TOKEN_CHARS, TOKEN_TOO_SHORT

# The error type of an API key file that cannot be read yet: `appliance run` waits for it to be fixed.
KEY_FILE_UNREADABLE = "key_file_unreadable"


def packaged_default(name: str) -> Path:
    """Path of a file shipped in `appliance/defaults/`."""
    return Path(str(resources.files("appliance").joinpath("defaults", name)))


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


def api_key_from_file(path: Path) -> SecretStr:
    """The API key in `OPENAI_API_KEY_FILE`, as a validation error of its own type when unreadable."""
    try:
        return SecretStr(read_key_file(path))
    except KeyFileError as exc:
        # Its own error type, so `appliance run` can wait for a permission fixed on the host.
        kind = KEY_FILE_UNREADABLE if exc.retryable else "key_file"
        raise PydanticCustomError(kind, "{text}", {"text": str(exc)}) from None


def secret_from_file(path: Path, field: str) -> SecretStr:
    """A secret kept in a file (`…_FILE` settings): readable UTF-8 text, not empty."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ValueError(f"{field} {str(path)!r} cannot be read: {reason}") from None
    if not text:
        raise ValueError(f"{field} {str(path)!r} is empty")
    return SecretStr(text)


def token_from_file(path: Path, variable: str) -> SecretStr:
    """A token kept in a file (`APPLIANCE_…__TOKEN_FILE`): readable, not empty, long enough."""
    token = secret_from_file(path, "token_file")
    if len(token.get_secret_value()) < MIN_TOKEN_CHARS:
        raise ValueError(f"{variable}: the token in {str(path)!r} {TOKEN_TOO_SHORT}")
    return token
