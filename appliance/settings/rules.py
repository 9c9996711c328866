"""The rules a setting's value is checked against, shared by the groups: loopback, URLs, tokens,
blank-means-unset, file and device specs. Plain functions (no pydantic models) so any group can use them."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# A token the page's login or a peripheral presents: long enough not to be guessed online.
MIN_TOKEN_CHARS = 16
TOKEN_TOO_SHORT = f"must be at least {MIN_TOKEN_CHARS} characters, e.g. from `openssl rand -hex 16`"


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


def websocket_url(value: str) -> str:
    """A ws(s):// URL naming a host; plain ws:// only to this machine, since the API key travels in
    the handshake's Authorization header."""
    if not value.startswith(("ws://", "wss://")):
        raise ValueError("must be a websocket URL starting with ws:// or wss://")
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if not host:
        raise ValueError("must name a host, e.g. wss://api.openai.com/v1/realtime")
    if value.startswith("ws://") and not is_loopback(host):
        raise ValueError(
            "ws:// would send the API key unencrypted; use wss://, or ws:// only to this machine "
            "(127.0.0.1, ::1, localhost)"
        )
    return value


def keyed_http_url(value: str) -> str:
    """An http(s):// URL naming a host that is sent the API key: plain http:// only to this machine."""
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


def long_enough_token(token: str) -> None:
    """Raise (with `TOKEN_TOO_SHORT`) for a token shorter than `MIN_TOKEN_CHARS`."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(TOKEN_TOO_SHORT)


def unset(value: Any) -> Any:
    """An empty value (`APPLIANCE_X=`) means the setting is not set."""
    return None if isinstance(value, str) and not value.strip() else value


def existing_file(value: Path | None) -> Path | None:
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


def device_spec(value: Any) -> str | int | None:
    """A device is given by index (digits) or by a name substring; empty means the system default."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def comma_list(value: Any) -> Any:
    """`a, b,,c` (or a list) as its non-empty, stripped items."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list):
        value = [str(v).strip() for v in value if str(v).strip()]
    return value
