"""Commands a client sends on `/api/events`, and their acks: an adapter over `appliance.controls`.

`{"command": "start"}` (as a button press), `"stop"`, `"mute"`, `"unmute"`, `"dismiss"` (a ringing
timer or a playing announcement), `{"command": "volume", "value": 0-100}`, `{"command": "announce",
"text": "..."}` (chime and speak it once nothing else is going on); each is answered with
`{"event": "ack", "command": ..., "ok": true|false, "error": ...}`. Mute and volume acks carry the
value in effect, and `"saved": false` while the data directory refuses the write (the value holds
until a restart and is written once the directory takes writes again).

The household's voices: `{"command": "enroll", "name": "anna", "takes": 5}` (takes 3-10, default 5)
starts the guided enrolment (its progress: `enrol_prompt`, `enrol_take`, then `enrolled` or
`enrol_failed`; `stop` cancels it), `{"command": "profiles"}` (the ack carries
`profiles: [{name, takes}]`), `{"command": "forget_profile", "name": "anna"}`.
"""

from __future__ import annotations

import json
from typing import Any

from ..controls import Ack, Controls
from ..enrolment_flow import DEFAULT_TAKES, MAX_TAKES, MIN_TAKES
from .device import Device

MAX_COMMAND_BYTES = 4096  # an announcement's 500 characters, even as JSON's \uXXXX escapes


def ack(command: str | None, ok: bool, error: str | None = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"event": "ack", "command": command, "ok": ok}
    if error is not None:
        message["error"] = error
    message.update(extra)
    return message


def _reply(command: str, result: Ack) -> dict[str, Any]:
    return ack(command, result.ok, result.error, **result.values)


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
    controls = device.controls
    if command == "start":
        return _reply(command, controls.start("api")), None
    if command == "stop":
        return _reply(command, controls.stop("api")), None
    if command == "dismiss":
        return _reply(command, controls.dismiss("api")), None
    if command in ("mute", "unmute"):
        return _reply(command, controls.set_muted(command == "mute", "api")), None  # all see the `mute` event
    if command == "volume":
        value = message.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            return ack(command, False, "value must be a number from 0 to 100"), None
        return _reply(command, controls.set_volume(round(value))), None  # all see the `volume` event
    if command in ("enroll", "profiles", "forget_profile"):
        return _reply(command, _voices(controls, command, message)), None  # enrol_* events follow for all
    if command == "announce":
        return _reply(command, controls.announce(message.get("text"), "api")), None  # all see `announce`
    return ack(command, False, f"unknown command {command[:40]!r}"), None


def _voices(controls: Controls, command: str, message: dict[str, Any]) -> Ack:
    """The household's enrolled voices: enrol one from the device, list them, delete one."""
    if command == "profiles":
        return controls.profiles()
    name = message.get("name")
    if not isinstance(name, str):
        return Ack(False, 'name must be a string, e.g. {"name": "anna"}')
    if command == "forget_profile":
        return controls.forget_profile(name)
    takes = message.get("takes", DEFAULT_TAKES)
    if isinstance(takes, bool) or not isinstance(takes, int):
        return Ack(False, f"takes must be a whole number from {MIN_TAKES} to {MAX_TAKES}")
    return controls.enroll(name, takes)
