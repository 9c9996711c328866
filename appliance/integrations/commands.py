"""The commands MQTT may give, and what it may read: a small protocol over the appliance's command surface.

Home Assistant and the fleet take the same path as the device page: `PageCommands` is a thin adapter
over `appliance.web.commands.run_command` (the page's checks and acks, word for word), plus `dismiss`
(a ringing timer), which the page does not have yet. When `appliance/controls.py` lands, `controls`
replaces the adapter; nothing else here changes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..app import Appliance

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

    def status(self) -> Status: ...


def ack(command: str | None, ok: bool, error: str | None = None, **extra: Any) -> Ack:
    out: Ack = {"event": "ack", "command": command, "ok": ok}
    if error is not None:
        out["error"] = error
    out.update(extra)
    return out


class PageCommands:
    """`Commands` today: the device page's own command runner (same checks, same acks)."""

    def __init__(self, app: Appliance) -> None:
        self._app = app

    def _run(self, message: dict[str, Any]) -> Ack:
        from ..web.commands import run_command

        return run_command(self._app, json.dumps(message))[0]

    def start(self) -> Ack:
        return self._run({"command": "start"})

    def stop(self) -> Ack:
        return self._run({"command": "stop"})

    def set_muted(self, muted: bool) -> Ack:
        return self._run({"command": "mute" if muted else "unmute"})

    def set_volume(self, value: float) -> Ack:
        return self._run({"command": "volume", "value": value})

    def dismiss(self) -> Ack:
        done = self._app.controls.dismiss("api")
        return ack("dismiss", done.ok, done.error)

    def status(self) -> Status:
        app = self._app
        timers = [PendingTimer(t.id, t.label, t.due_at) for t in app.timers.pending()]
        return Status(state=app.state.state.value, muted=app.controls.muted, volume=app.controls.volume, timers=timers)


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
