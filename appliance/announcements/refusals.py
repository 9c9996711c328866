"""Refused announcements, said without flooding: the first refusal from a source is an `announce`
event (`refused`) at once; more from the same source within `EVERY_S` are held and said as one event
when the window ends, with how many it stands for (`count`). A looping automation then writes two
log lines every ten seconds, not one per message, and cannot push everything else out of the page's
recent events, while `appliance_announcements_total{action="refused"}` still counts every one."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..events import ApplianceEvent
from .events import AnnouncementChanged

EVERY_S = 10.0


@dataclass(slots=True)
class _Held:
    count: int
    chars: int
    error: str | None


class Refusals:
    def __init__(self, publish: Callable[[ApplianceEvent], None], every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._publish = publish
        self._every_s = EVERY_S if every_s is None else every_s
        self._clock = clock
        self._opened: dict[str, float] = {}  # per source: when its window began
        self._held: dict[str, _Held] = {}

    def refused(self, source: str, chars: int, error: str | None) -> None:
        now = self._clock()
        opened = self._opened.get(source)
        if opened is not None and now - opened < self._every_s:
            held = self._held.setdefault(source, _Held(0, chars, error))
            held.count, held.chars, held.error = held.count + 1, chars, error
            return
        self.flush(source)  # what a window held back when no timer could say it (no running loop)
        self._opened[source] = now
        self._say(source, _Held(1, chars, error))
        with contextlib.suppress(RuntimeError):  # no loop: the next refusal says what was held
            asyncio.get_running_loop().call_later(self._every_s, self.flush, source)

    def flush(self, source: str) -> None:
        """Say the refusals held back in `source`'s window, as one event."""
        if (held := self._held.pop(source, None)) is not None:
            self._say(source, held)

    def _say(self, source: str, held: _Held) -> None:
        self._publish(AnnouncementChanged(action="refused", source=source, chars=held.chars, error=held.error,
                                          count=held.count if held.count > 1 else None))
