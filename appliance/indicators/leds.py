"""Status LEDs: one pattern per appliance state, for an RGB LED, a single (PWM) LED, or none.

Thin gpiozero compositions; gpiozero runs blink/pulse in its own background thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..events import ApplianceEvent, StateChanged
from ..settings import LedSettings
from ..state import State

if TYPE_CHECKING:
    from gpiozero import LED, PWMLED, RGBLED

log = logging.getLogger("appliance.leds")

Colour = tuple[float, float, float]
PatternKind = Literal["off", "on", "blink", "pulse"]


@dataclass(frozen=True)
class Pattern:
    kind: PatternKind
    colour: Colour = (1.0, 1.0, 1.0)
    on_s: float = 0.5
    off_s: float = 0.5


OFF = Pattern("off")

PATTERNS: dict[State, Pattern] = {
    State.IDLE: OFF,
    State.WAKING: Pattern("blink", (1.0, 1.0, 1.0), 0.1, 0.1),
    State.CONNECTING: Pattern("blink", (0.0, 0.0, 1.0), 0.15, 0.15),
    State.LISTENING: Pattern("on", (0.0, 0.0, 1.0)),
    State.THINKING: Pattern("pulse", (1.0, 0.6, 0.0), 0.5, 0.5),
    State.SPEAKING: Pattern("on", (0.0, 1.0, 0.0)),
    State.ERROR: Pattern("blink", (1.0, 0.0, 0.0), 0.25, 0.75),
    State.MUTED: Pattern("on", (1.0, 0.0, 0.0)),
    State.RINGING: Pattern("blink", (1.0, 0.5, 0.0), 0.3, 0.3),
    State.ANNOUNCING: Pattern("pulse", (0.0, 1.0, 0.0), 0.4, 0.4),  # speaking unasked: green, but pulsing
    State.ENROLLING: Pattern("pulse", (1.0, 0.0, 1.0), 0.75, 0.75),  # learning a voice: magenta
}

# Patterns shown by name over the state's, e.g. by the timers feature.
NAMED: dict[str, Pattern] = {
    "timer_ringing": Pattern("blink", (1.0, 0.6, 0.0), 0.15, 0.15),
    "answered_elsewhere": Pattern("on", (0.0, 0.0, 0.25)),  # another device of the home answers this wake
}


class StatusLeds:
    def __init__(self, settings: LedSettings) -> None:
        # Imported here: a device without LEDs does not load gpiozero (about 2.5 MB resident).
        from gpiozero import LED, PWMLED, RGBLED

        self._pwm = settings.pwm
        self.device: RGBLED | PWMLED | LED
        if settings.red_pin is not None:
            self.device = RGBLED(
                settings.red_pin,
                settings.green_pin,
                settings.blue_pin,
                active_high=settings.active_high,
                pwm=settings.pwm,
            )
        elif settings.pin is not None:
            cls = PWMLED if settings.pwm else LED
            self.device = cls(settings.pin, active_high=settings.active_high)
        else:
            raise ValueError("no LED pins configured")
        self._state = State.IDLE
        self._override: str | None = None

    @staticmethod
    def configured(settings: LedSettings) -> bool:
        return settings.red_pin is not None or settings.pin is not None

    def on_event(self, event: ApplianceEvent) -> None:
        """The LEDs' subscription to the event stream: each state change shows its pattern."""
        if isinstance(event, StateChanged):
            self.show(State(event.state))

    def show(self, state: State) -> None:
        self._state = state
        if self._override is None:
            self._apply(PATTERNS[state])

    def play(self, name: str | None) -> None:
        """A named pattern (see NAMED) over the state's until `play(None)`."""
        if name is not None and name not in NAMED:
            raise ValueError(f"no LED pattern {name!r}; known: {', '.join(sorted(NAMED))}")
        self._override = name
        self._apply(NAMED[name] if name is not None else PATTERNS[self._state])

    def _apply(self, pattern: Pattern) -> None:
        dev = self.device
        if pattern.kind == "off":
            dev.off()
            return
        # Without PWM, a pulse falls back to a slow blink and colours to full on/off.
        kind = pattern.kind if (self._pwm or pattern.kind != "pulse") else "blink"
        from gpiozero import PWMLED, RGBLED  # already loaded by __init__

        if isinstance(dev, RGBLED):
            colour = pattern.colour if self._pwm else tuple(1.0 if c >= 0.5 else 0.0 for c in pattern.colour)
            if kind == "on":
                dev.color = colour
            elif kind == "blink":
                dev.blink(on_time=pattern.on_s, off_time=pattern.off_s, on_color=colour)
            else:
                dev.pulse(fade_in_time=pattern.on_s, fade_out_time=pattern.off_s, on_color=colour)
        elif isinstance(dev, PWMLED):
            if kind == "on":
                dev.on()
            elif kind == "blink":
                dev.blink(on_time=pattern.on_s, off_time=pattern.off_s)
            else:
                dev.pulse(fade_in_time=pattern.on_s, fade_out_time=pattern.off_s)
        else:
            if kind == "on":
                dev.on()
            else:
                dev.blink(on_time=pattern.on_s, off_time=pattern.off_s)

    def close(self) -> None:
        self.device.off()
        self.device.close()
