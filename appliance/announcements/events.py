"""The `announce` event (its own module: `appliance/events.py` holds the core stream's events)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..events import ApplianceEvent

AnnounceAction = Literal["queued", "started", "done", "dismissed", "failed", "expired"]


@dataclass(frozen=True, kw_only=True)
class AnnouncementChanged(ApplianceEvent):
    """An announcement was queued, started, spoken to the end, dismissed (button or `stop`/`dismiss`),
    failed (the session or the audio), or expired (it waited too long). The text itself is household
    content: like a transcript it is never in the log, the metrics or the event stream; `chars` is."""

    name: ClassVar[str] = "announce"
    logger: ClassVar[str] = "appliance.announce"
    action: AnnounceAction
    source: str  # "api", "mqtt", "homeassistant"
    chars: int
    announcement_id: int
    waiting: int | None = None  # queued: how many play before it
    by: str | None = None  # dismissed: "button", "api", "mqtt"
    error: str | None = None  # failed: what broke
    duration_s: float | None = None  # done, dismissed: from the chime to the end

    @property
    def level(self) -> int:  # type: ignore[override]
        return logging.WARNING if self.action in ("failed", "expired") else logging.INFO

    def message(self) -> str:
        text = f"announcement {self.announcement_id} ({self.chars} characters, from {self.source}) {self.action}"
        if self.action == "dismissed" and self.by:
            return f"{text} by {self.by}"
        return f"{text}: {self.error}" if self.error else text
