"""Kitchen timers: kept in the data directory (wall-clock due times), so they survive a restart.

The book stores and finds timers; ringing a due one is the appliance's job (`appliance.ringing`).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass

from ...events import EventBus, TimerChanged
from ...store import PUT_SQL, Store, StoreFault
from .errors import ToolFailed

log = logging.getLogger("appliance.timers")

MAX_SECONDS = 24 * 3600
_RANG_KEY = "timers_rang"  # labels that rang since the model was last told
_UNITS = {"h": 3600, "hour": 3600, "hr": 3600, "m": 60, "min": 60, "minute": 60, "s": 1, "sec": 1, "second": 1}


@dataclass(frozen=True)
class Timer:
    id: int
    label: str
    seconds: float
    due_at: float

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.due_at - (time.time() if now is None else now))


def parse_duration(text: str) -> float:
    """Seconds in "90", "5m", "1h 30m", "2 minutes 10 seconds", "1:30" (m:s) or ISO "PT5M"."""
    spec = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", spec):
        return float(spec)
    if m := re.fullmatch(r"(?:(\d+):)?(\d+):(\d{2})", spec):
        hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
        return float(hours * 3600 + minutes * 60 + seconds)
    spec = spec.removeprefix("pt")
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)\s*([a-z]+)[\s,]*(?:and\s+)?", spec):
        if m.start() != pos:
            break
        unit = m.group(2).rstrip("s") if m.group(2) not in ("s",) else "s"
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {m.group(2)!r}")
        total += float(m.group(1)) * _UNITS[unit]
        pos = m.end()
    if pos != len(spec) or total <= 0:
        raise ValueError(f"cannot read {text!r} as a duration; say e.g. '5 minutes' or '90 seconds'")
    return total


def spoken_duration(seconds: float) -> str:
    seconds = round(seconds)
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"


class TimerBook:
    def __init__(self, store: Store, events: EventBus) -> None:
        self._store = store
        self._events = events

    def pending(self) -> list[Timer]:
        rows = self._store.execute("SELECT id, label, seconds, due_at FROM timers ORDER BY due_at, id")
        return [Timer(int(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]

    def add(self, seconds: float, label: str) -> Timer:
        if not 0 < seconds <= MAX_SECONDS:
            raise ValueError("a timer runs from one second to 24 hours")
        label = " ".join(label.split())[:60] or "timer"
        now = time.time()
        try:
            rows = self._store.execute(
                "INSERT INTO timers (label, seconds, due_at, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                (label, seconds, now + seconds, now),
            )
        except StoreFault as fault:  # the model tells the person: no timer runs that nobody set
            raise ToolFailed(f"the timer was not set: {fault.reason}") from None
        timer = Timer(int(rows[0][0]), label, seconds, now + seconds)
        self._events.publish(TimerChanged(action="set", label=label, timer_id=timer.id, seconds=seconds))
        return timer

    def cancel(self, label: str) -> list[Timer]:
        """Cancel the timers whose label matches (case-insensitive; 'all' cancels every one)."""
        wanted = " ".join(label.split()).casefold()
        gone = [t for t in self.pending() if wanted in ("all", "") or wanted in t.label.casefold()]
        try:
            with self._store.transaction() as db:  # all or none: the person hears which still run
                for timer in gone:
                    db.execute("DELETE FROM timers WHERE id = ?", (timer.id,))
        except StoreFault as fault:
            raise ToolFailed(f"no timer was cancelled, they still run: {fault.reason}") from None
        for timer in gone:
            self._events.publish(TimerChanged(action="cancelled", label=timer.label, timer_id=timer.id))
        return gone

    def due(self, now: float | None = None) -> list[Timer]:
        now = time.time() if now is None else now
        return [t for t in self.pending() if t.due_at <= now]

    def finish(self, timers: list[Timer]) -> None:
        """Rung timers leave the book; the next conversation is told they rang. All or nothing, so a
        write that fails can be repeated (raises `StoreFault`)."""
        if not timers:
            return
        rang = [*self._store.get(_RANG_KEY, []), *(t.label for t in timers)]
        with self._store.transaction() as db:
            for timer in timers:
                db.execute("DELETE FROM timers WHERE id = ?", (timer.id,))
            db.execute(PUT_SQL, (_RANG_KEY, json.dumps(rang)))

    def take_rang(self) -> list[str]:
        """Labels that rang since the last conversation (then forgotten). When the store cannot forget
        them the model is told now and again next time, rather than the conversation failing."""
        rang = list(self._store.get(_RANG_KEY, []))
        if rang:
            try:
                self._store.put(_RANG_KEY, [])
            except StoreFault as fault:
                log.warning("rung timers not cleared: %s", fault, extra={"event": "store_write_failed"})
        return rang

    def instructions(self, rang: list[str]) -> str:
        lines = []
        if rang:
            lines.append("Since the last conversation these timers rang: " + ", ".join(rang) + ".")
        pending = self.pending()
        if pending:
            lines.append("Running timers: " + "; ".join(
                f"{t.label} ({spoken_duration(t.remaining())} left)" for t in pending) + ".")
        return "\n".join(lines)
