"""The push button: a thin gpiozero composition posting short and long presses to the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("appliance.button")


class PushButton:
    """Short press (released before `hold_s`) and long press (held `hold_s`) as two callbacks;
    or, for push-to-talk (`on_release` given), press and release as they happen.

    gpiozero calls back on its own thread; the callbacks run on the asyncio loop.
    """

    def __init__(
        self,
        pin: int,
        loop: asyncio.AbstractEventLoop,
        on_short_press: Callable[[], None],
        on_long_press: Callable[[], None] | None = None,
        on_release: Callable[[], None] | None = None,
        pull_up: bool = True,
        bounce_s: float = 0.05,
        hold_s: float = 2.0,
    ) -> None:
        self._loop = loop
        self._on_short = on_short_press
        self._on_long = on_long_press
        self._on_release = on_release
        self._held = False
        # Imported here: a device without a button does not load gpiozero (about 2.5 MB resident).
        from gpiozero import Button

        self.device = Button(pin, pull_up=pull_up, bounce_time=bounce_s or None, hold_time=hold_s)
        self.device.when_held = self._held_cb
        self.device.when_released = self._released_cb
        self.device.when_pressed = self._pressed_cb

    def _pressed_cb(self) -> None:
        self._held = False
        if self._on_release is not None:  # push-to-talk: act on the press itself
            self._loop.call_soon_threadsafe(self._on_short)

    def _held_cb(self) -> None:
        self._held = True
        if self._on_long is not None:
            self._loop.call_soon_threadsafe(self._on_long)

    def _released_cb(self) -> None:
        if self._on_release is not None:
            self._loop.call_soon_threadsafe(self._on_release)
        elif not self._held:
            self._loop.call_soon_threadsafe(self._on_short)
        self._held = False

    @property
    def is_pressed(self) -> bool:
        return bool(self.device.is_pressed)

    def close(self) -> None:
        self.device.close()
