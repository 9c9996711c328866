"""The announcement queue and its player: one at a time, when the appliance rests.

An announcement waits for a conversation, a ringing timer or an error to end (at most `MAX_WAIT_S`:
"dinner is ready" an hour late is worse than nothing), then takes the `announcing` state, chimes,
speaks the text through a short Realtime session and returns to rest (idle, or muted: mute is a
promise about the microphone, and an announcement uses none, so a muted appliance still announces,
as a due timer still rings). While it plays, the wake word is ignored (the announcement may say it)
and a button press, `stop` or `dismiss` dismisses it; the next queued one follows. The queue holds
`QUEUE_SIZE`: the oldest are kept and a new one is refused, so a flood cannot push out what was
asked first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..events import EventBus
from ..state import State, StateMachine
from .events import AnnouncementChanged

if TYPE_CHECKING:
    from ..app import Appliance

log = logging.getLogger("appliance.announce")

QUEUE_SIZE = 5
MAX_WAIT_S = 300.0  # an announcement not started by then is dropped (expired)
CHECK_EVERY_S = 0.2

Speak = Callable[[str, asyncio.Event], Awaitable[bool]]
"""Speak a text; True when it was spoken to the end, False when `dismissed` was set first. Raises
on failure (the message says what broke)."""


@dataclass
class Announcement:
    id: int
    text: str
    source: str
    queued_at: float = field(default_factory=time.monotonic)


class Announcer:
    """Threads: every method runs on the event-loop thread."""

    def __init__(
        self,
        state: StateMachine,
        events: EventBus,
        *,
        chime: Callable[[], float],
        speak: Speak,
        ready: Callable[[], bool],
        rest_state: Callable[[], State],
    ) -> None:
        self._state = state
        self._events = events
        self._chime = chime  # queues the chime; returns its length in seconds
        self._speak = speak
        self._ready = ready  # the audio devices are open: an announcement can be heard
        self._rest_state = rest_state
        self._queue: deque[Announcement] = deque()
        self._ids = itertools.count(1)
        self._queued = asyncio.Event()
        self._dismissed = asyncio.Event()
        self._dismissed_by = ""
        self.playing: Announcement | None = None

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def add(self, text: str, source: str) -> tuple[int | None, str | None]:
        """Queue a checked text: (its id, None), or (None, why not) when the queue is full."""
        if len(self._queue) >= QUEUE_SIZE:
            return None, f"{QUEUE_SIZE} announcements are already waiting"
        item = Announcement(next(self._ids), text, source)
        ahead = len(self._queue) + (self.playing is not None)
        self._queue.append(item)
        self._queued.set()
        self._publish(item, "queued", waiting=ahead)
        return item.id, None

    def dismiss(self, by: str) -> bool:
        """Stop the announcement that plays now. True when one was playing."""
        if self.playing is None or self._dismissed.is_set():
            return False
        self._dismissed_by = by
        self._dismissed.set()
        return True

    async def run(self) -> None:
        while True:
            await self._queued.wait()
            while self._queue:
                await self._when_resting()
                item = self._queue.popleft()
                if time.monotonic() - item.queued_at > MAX_WAIT_S:
                    self._publish(item, "expired", error=f"not started within {MAX_WAIT_S:.0f} s")
                    continue
                await self._play(item)
            self._queued.clear()

    async def _when_resting(self) -> None:
        """Until the appliance rests with its audio open (a conversation, a ring, an error first), or the
        oldest announcement has waited too long (then it is dropped by the caller)."""
        while self._queue and time.monotonic() - self._queue[0].queued_at <= MAX_WAIT_S:
            if self._state.state in (State.IDLE, State.MUTED) and self._ready():
                return
            await asyncio.sleep(CHECK_EVERY_S)

    async def _play(self, item: Announcement) -> None:
        self._dismissed.clear()
        self.playing = item
        self._state.to(State.ANNOUNCING, source=item.source)  # synchronous with the check: nothing came between
        self._publish(item, "started")
        started = time.monotonic()
        try:
            self._chime()
            spoken = await self._until_audio_lost(self._speak(item.text, self._dismissed))
        except Exception as exc:  # the session or the audio: logged, and the appliance rests again
            self._publish(item, "failed", error=_describe(exc))
        else:
            took = round(time.monotonic() - started, 2)
            if spoken:
                self._publish(item, "done", duration_s=took)
            else:
                self._publish(item, "dismissed", by=self._dismissed_by or "stopped", duration_s=took)
        finally:
            self.playing = None
            if self._state.state == State.ANNOUNCING:  # (an audio fault may have moved it to error)
                self._state.to(self._rest_state(), reason="announced")

    async def _until_audio_lost(self, speaking: Awaitable[bool]) -> bool:
        """`speaking`, ended (as a failure) when the audio devices close under it."""
        task = asyncio.ensure_future(speaking)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=CHECK_EVERY_S)
                if not task.done() and not self._ready():
                    self._dismissed_by = "audio_lost"
                    self._dismissed.set()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(task, timeout=3)
                    raise RuntimeError("the audio devices closed")
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _publish(self, item: Announcement, action: str, **fields: object) -> None:
        self._events.publish(AnnouncementChanged(
            action=action, source=item.source, chars=len(item.text), announcement_id=item.id,  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        ))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def announcer_for(app: Appliance) -> Announcer:
    """The running appliance's announcer: its chime, its player and its agent's voice."""
    from ..conversation.announcement import speak_announcement

    async def speak(text: str, dismissed: asyncio.Event) -> bool:
        if app.player is None:
            raise RuntimeError("the audio devices are closed")
        return await speak_announcement(app.settings, app.api_key, app.player, text, app.agents.voice, dismissed)

    return Announcer(
        app.state, app.events,
        chime=lambda: app.earcons.play("wake", app.player),
        speak=speak, ready=lambda: app.audio_ok, rest_state=app.controls.rest_state,
    )
