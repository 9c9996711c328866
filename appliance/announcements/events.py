"""The `announce` event (its own module: `appliance/events.py` holds the core stream's events)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..events import ApplianceEvent

AnnounceAction = Literal["queued", "started", "done", "dismissed", "failed", "expired", "refused"]


@dataclass(frozen=True, kw_only=True)
class AnnouncementChanged(ApplianceEvent):
    """An announcement was queued, started, spoken to the end, dismissed (button or `stop`/`dismiss`),
    failed (the session or the audio), expired (it waited too long), or refused (its text, a full
    queue: never queued, so no `announcement_id`). The text itself is household content: like a
    transcript it is never in the log, the metrics or the event stream; `chars` is."""

    name: ClassVar[str] = "announce"
    logger: ClassVar[str] = "appliance.announce"
    action: AnnounceAction
    source: str  # "api", "mqtt", "homeassistant"
    chars: int  # refused: of the text as given (0 when it was no text)
    announcement_id: int | None = None  # every action but refused
    waiting: int | None = None  # queued: how many play before it
    by: str | None = None  # dismissed: "button", "api", "mqtt"
    error: str | None = None  # failed: what broke; refused: why (the command's answer)
    duration_s: float | None = None  # done, dismissed: from the chime to the end
    count: int | None = None  # refused: how many refusals this event stands for, when more than one

    @property
    def level(self) -> int:  # type: ignore[override]
        return logging.WARNING if self.action in ("failed", "expired") else logging.INFO

    def message(self) -> str:
        number = "" if self.announcement_id is None else f" {self.announcement_id}"
        text = f"announcement{number} ({self.chars} characters, from {self.source}) {self.action}"
        if self.action == "dismissed" and self.by:
            return f"{text} by {self.by}"
        if self.count:  # refused, summed (announcements/refusals.py)
            text = f"{self.count} announcements from {self.source} refused (the last {self.chars} characters)"
        return f"{text}: {self.error}" if self.error else text
