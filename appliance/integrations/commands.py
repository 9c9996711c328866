"""The commands MQTT may give, and what it may read: a small protocol over the appliance's command surface.

Home Assistant and the fleet take the same path as the device page: `ControlsCommands` calls
`appliance.controls` directly, with the page's checks and acks word for word (`web/commands.py` is
the page's own thin adapter over the same methods).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..app import Appliance
    from ..controls import Ack as ControlsAck

Ack = dict[str, Any]  # {"event": "ack", "command": ..., "ok": bool, "error"?: ...}


@dataclass(frozen=True)
class PendingTimer:
    id: int
    label: str
    due_at: float  # Unix time


@dataclass(frozen=True)
class Status:
    """What the integrations show before the first event arrives (afterwards, events keep it current)."""

    state: str
    muted: bool
    volume: int
    timers: list[PendingTimer] = field(default_factory=list)


class Commands(Protocol):
    def start(self) -> Ack: ...

    def stop(self) -> Ack: ...

    def set_muted(self, muted: bool) -> Ack: ...

    def set_volume(self, value: float) -> Ack: ...

    def dismiss(self) -> Ack: ...

    def announce(self, text: object, source: str) -> Ack: ...

    def status(self) -> Status: ...


def ack(command: str | None, ok: bool, error: str | None = None, **extra: Any) -> Ack:
    out: Ack = {"event": "ack", "command": command, "ok": ok}
    if error is not None:
        out["error"] = error
    out.update(extra)
    return out


class ControlsCommands:
    """`Commands` of a running appliance: its `controls`, answered as the device page answers."""

    def __init__(self, app: Appliance) -> None:
        self._app = app

    @staticmethod
    def _reply(command: str, result: ControlsAck) -> Ack:
        return ack(command, result.ok, result.error, **result.values)

    def start(self) -> Ack:
        return self._reply("start", self._app.controls.start("api"))

    def stop(self) -> Ack:
        return self._reply("stop", self._app.controls.stop("api"))

    def set_muted(self, muted: bool) -> Ack:
        return self._reply("mute" if muted else "unmute", self._app.controls.set_muted(muted, "api"))

    def set_volume(self, value: float) -> Ack:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            return ack("volume", False, "value must be a number from 0 to 100")
        return self._reply("volume", self._app.controls.set_volume(round(value)))

    def dismiss(self) -> Ack:
        return self._reply("dismiss", self._app.controls.dismiss("api"))

    def announce(self, text: object, source: str) -> Ack:
        return self._reply("announce", self._app.controls.announce(text, source))

    def status(self) -> Status:
        app = self._app
        timers = [PendingTimer(t.id, t.label, t.due_at) for t in app.timers.pending()]
        return Status(state=app.state.state.value, muted=app.controls.muted, volume=app.controls.volume, timers=timers)


PageCommands = ControlsCommands  # its former name


class RateLimitedLog:
    """One warning per `every_s` for a kind of rejected message, with how many were ignored since: a flood
    of garbage on a command topic cannot flood the log."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0) -> None:
        self._log = logger
        self._every_s = every_s
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warning(self, kind: str, text: str, **fields: Any) -> bool:
        """Log `text` unless `kind` was logged less than `every_s` ago; True when it was written."""
        now = time.monotonic()
        if now - self._last.get(kind, -self._every_s) < self._every_s:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return False
        ignored = self._quiet.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({ignored} more like it ignored since the last line)" if ignored else ""
        self._log.warning(text + suffix, extra={"event": "mqtt_rejected", "reason": kind, "ignored": ignored, **fields})
        return True
