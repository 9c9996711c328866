"""Ringing due timers: the `ringing` state (LEDs, metrics and API show it) and the timer sound,
repeated until the wake word or a button press dismisses it, or for at most `timer_ring_s`.

A timer that falls due during a conversation waits for it to end; one that fell due while the
appliance was off rings at start-up. Rung timers leave the book, and the next conversation's
agent is told which rang. Dismissal always returns to rest: when the book cannot be written (a
read-only or full data directory) the rung timers are kept here, not rung again, and written
every `FINISH_RETRY_S` until the store takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from .conversation.tools.timers import Timer, TimerBook
from .events import ErrorRaised, EventBus, TimerChanged
from .state import State, StateMachine

log = logging.getLogger("appliance.timers")

CHECK_EVERY_S = 0.5
PAUSE_S = 0.6  # silence between two rings
FINISH_RETRY_S = 5.0  # rung timers the store refused are written again this often


class TimerRinger:
    def __init__(
        self,
        book: TimerBook,
        state: StateMachine,
        events: EventBus,
        *,
        play: Callable[[], float],
        ready: Callable[[], bool],
        rest_state: Callable[[], State],
        ring_s: float,
    ) -> None:
        self._book = book
        self._state = state
        self._events = events
        self._play = play  # queues the timer sound once; returns its length in seconds
        self._ready = ready  # audio is up: a ring can be heard
        self._rest_state = rest_state
        self._ring_s = ring_s
        self._dismissed = asyncio.Event()
        self._dismissed_by = "timeout"
        self._unfinished: list[Timer] = []  # rang, but the store has not taken them off the book yet
        self._retry_at = 0.0

    @property
    def unfinished(self) -> list[Timer]:
        return list(self._unfinished)

    @property
    def ringing(self) -> bool:
        return self._state.state == State.RINGING

    def dismiss(self, by: str) -> bool:
        """The wake word or a button press while ringing. True when it stopped a ring."""
        if not self.ringing or self._dismissed.is_set():
            return False
        self._dismissed_by = by
        self._dismissed.set()
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            if self._unfinished and time.monotonic() >= self._retry_at:
                self._finish([])
            if self._state.state not in (State.IDLE, State.MUTED) or not self._ready():
                continue  # a conversation (or an error) first: the ring waits
            try:
                rung = {t.id for t in self._unfinished}
                due = [t for t in self._book.due() if t.id not in rung]
                if due:
                    await self.ring(due)
            except Exception:  # e.g. the database: timers must not take the appliance down
                log.exception("timer check failed", extra={"event": "timer_failed"})
                await asyncio.sleep(5)

    async def ring(self, due: list[Timer]) -> None:
        self._dismissed.clear()
        self._dismissed_by = "timeout"
        self._state.to(State.RINGING, reason="timer")
        for timer in due:
            self._events.publish(TimerChanged(action="rang", label=timer.label, timer_id=timer.id))
        deadline = time.monotonic() + self._ring_s
        try:
            while self.ringing and time.monotonic() < deadline and not self._dismissed.is_set():
                length = self._play()
                wait = min(length + PAUSE_S, max(0.0, deadline - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dismissed.wait(), timeout=max(wait, 0.05))
        finally:
            # Back to rest first: nothing the store does may keep the appliance ringing.
            for timer in due:
                self._events.publish(TimerChanged(action="dismissed", label=timer.label, timer_id=timer.id,
                                                  by=self._dismissed_by))
            if self.ringing:
                self._state.to(self._rest_state(), reason="timer_dismissed")
            self._finish(due)

    def _finish(self, rung: list[Timer]) -> None:
        """Take rung timers (and any the store refused before) off the book; on failure keep them."""
        first_failure = not self._unfinished
        timers = [*self._unfinished, *rung]
        try:
            self._book.finish(timers)
        except Exception as exc:  # a read-only or full data directory, a locked or damaged database
            self._unfinished = timers
            self._retry_at = time.monotonic() + FINISH_RETRY_S
            if first_failure:
                self._events.publish(ErrorRaised(
                    kind="store", retry_in_s=FINISH_RETRY_S,
                    text=f"rung timers not marked done: {exc}; they will not ring again, "
                         f"retrying every {FINISH_RETRY_S:.0f} s",
                ))
            return
        if self._unfinished:
            log.info("rung timers marked done: the data directory takes writes again",
                     extra={"event": "store_caught_up", "keys": ["timers"]})
        self._unfinished = []
