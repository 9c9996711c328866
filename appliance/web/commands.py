"""Commands a client sends on `/api/events`, and their acks.

`{"command": "start"}` (as a button press), `"stop"`, `"mute"`, `"unmute"`,
`{"command": "volume", "value": 0-100}`; each is answered with
`{"event": "ack", "command": ..., "ok": true|false, "error": ...}`.
"""

from __future__ import annotations

import json
from typing import Any

from .device import Device

MAX_COMMAND_BYTES = 1024


def ack(command: str | None, ok: bool, error: str | None = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"event": "ack", "command": command, "ok": ok}
    if error is not None:
        message["error"] = error
    message.update(extra)
    return message


def run_command(device: Device, text: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Run one command; returns its ack and, where a command's effect is not already an event on
    the appliance's stream, a message for all clients (none today: mute and volume are events)."""
    if len(text) > MAX_COMMAND_BYTES:
        return ack(None, False, "command too long"), None
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…", nested past the parser's depth
        return ack(None, False, "not JSON"), None
    if not isinstance(message, dict) or not isinstance(message.get("command"), str):
        return ack(None, False, 'expected {"command": ...}'), None
    command: str = message["command"]
    if command == "start":
        ok = device.start_conversation("api")
        return ack(command, ok, None if ok else f"cannot start while {device.state.state.value}"), None
    if command == "stop":
        ok = device.stop_conversation()
        return ack(command, ok, None if ok else "no conversation in progress"), None
    if command in ("mute", "unmute"):
        device.set_muted(command == "mute", "api")
        return ack(command, True, muted=device.muted), None  # every client sees the `mute` event
    if command == "volume":
        value = message.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            return ack(command, False, "value must be a number from 0 to 100"), None
        volume = device.set_volume(round(value))
        return ack(command, True, volume=volume), None  # every client sees the `volume` event
    return ack(command, False, f"unknown command {command[:40]!r}"), None
