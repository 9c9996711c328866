"""The time tool: the device's local time in its configured time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def local_zone(name: str | None) -> dt.tzinfo | None:
    """The configured IANA zone, or None for the system's own."""
    return ZoneInfo(name) if name else None


def now_in(zone: dt.tzinfo | None) -> dt.datetime:
    return dt.datetime.now(zone) if zone is not None else dt.datetime.now().astimezone()


def current_time_text(now: dt.datetime | None = None, zone: dt.tzinfo | None = None) -> str:
    now = now or now_in(zone)
    return now.strftime("%A %d %B %Y, %H:%M (%Z, UTC%z)")
