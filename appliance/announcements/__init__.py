"""Announcements: a text the appliance chimes and speaks in its voice on command ("dinner is ready").

`text.py` checks the text, `events.py` is the `announce` event, `queue.py` holds the queue and plays
one at a time when nothing else is going on (a conversation or a ringing timer first), and
`conversation/announcement.py` speaks it through a short Realtime session. Every input (page/API,
MQTT, Home Assistant's notify entity) comes through `Controls.announce`.
"""

from __future__ import annotations

from .events import AnnouncementChanged
from .queue import Announcer, announcer_for
from .text import MAX_CHARS, clean_text

__all__ = ["MAX_CHARS", "AnnouncementChanged", "Announcer", "announcer_for", "clean_text"]
