"""Which status lights a device has: GPIO LEDs, APA102 pixels, or none, behind one small interface."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from ..events import ApplianceEvent
from ..settings import LedSettings
from ..state import State


class StatusLights(Protocol):
    def on_event(self, event: ApplianceEvent) -> None:
        """The lights' subscription to the event stream: each state change shows its pattern."""

    def show(self, state: State) -> None:
        """The pattern for an appliance state."""

    def play(self, pattern: str | None) -> None:
        """A named pattern over the state's (e.g. "timer_ringing"); None returns to the state's."""

    def close(self) -> None:
        """Lights off, pins released."""


def build_status_lights(settings: LedSettings, level: Callable[[], float] = lambda: 0.0) -> StatusLights | None:
    """The configured lights, or None. `level` is the speaker's current loudness (0..1 RMS), which
    pixels follow while the appliance speaks."""
    if settings.type == "apa102":
        from .pixels import PixelRing

        return PixelRing(settings, level)
    from .leds import StatusLeds

    if StatusLeds.configured(settings):
        return StatusLeds(settings)
    return None


async def play_for(lights: StatusLights, pattern: str, seconds: float) -> None:
    """A named pattern for a while, then the state's again (e.g. "answered_elsewhere")."""
    lights.play(pattern)
    try:
        await asyncio.sleep(seconds)
    finally:
        lights.play(None)
