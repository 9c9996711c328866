"""APA102 / DotStar status pixels: one animation per appliance state, drawn on their own thread.

Why the frame format is written here: the maintained APA102 libraries (apa102-pi, Adafruit's
DotStar) reach the bus through Adafruit Blinka's `board`/`busio`, which probes the board at import,
fails off a Pi and bypasses gpiozero's pin factories, so MockFactory could not test them and they
would fight gpiozero over the pins. The transport stays gpiozero's: its SPI interface
(`pin_factory.spi`, hardware SPI through lgpio on a Pi, mock SPI in tests) or, for boards that wire
the pixels to two ordinary GPIOs (Adafruit's Voice Bonnet), its software SPI bus on those pins.
What is left for this module is the frame format below and the animations.

Threading: the animation thread renders a frame from (pattern, time, speaker level) and writes it
only when it differs from the last one, so a solid colour costs nothing after its first frame. The
speaker level is read from the player (a lock-free snapshot); nothing here runs on an audio thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..events import ApplianceEvent, StateChanged
from ..settings import LedSettings
from ..state import State

log = logging.getLogger("appliance.pixels")

RGB = tuple[int, int, int]
OFF: RGB = (0, 0, 0)

# -- the APA102 frame format -----------------------------------------------------------------------

MAX_BRIGHTNESS = 31


def apa102_frame(pixels: Sequence[RGB], brightness: int) -> list[int]:
    """One update of the chain: a start frame of 32 zero bits; per pixel 0b111 + 5 bits of global
    brightness, then blue, green, red; an end frame of zeros, 32 bits (SK9822 clones latch on it)
    plus one bit per two pixels (each APA102 delays the clock by half a bit, so the last pixels
    only receive their data while these extra clock edges go out)."""
    level = 0xE0 | (max(0, min(MAX_BRIGHTNESS, brightness)))
    out = [0, 0, 0, 0]
    for r, g, b in pixels:
        out += [level, b & 0xFF, g & 0xFF, r & 0xFF]
    out += [0] * (4 + (len(pixels) + 15) // 16)
    return out


# -- transports: gpiozero's SPI ---------------------------------------------------------------------


class Transport(Protocol):
    def write(self, data: list[int]) -> None: ...

    def close(self) -> None: ...


class SpiTransport:
    """The SPI bus/device through gpiozero's pin factory (hardware SPI on a Pi)."""

    def __init__(self, bus: int, device: int) -> None:
        from gpiozero import Device

        Device.ensure_pin_factory()
        assert Device.pin_factory is not None
        self._spi = Device.pin_factory.spi(port=bus, device=device)

    def write(self, data: list[int]) -> None:
        self._spi.write(data)

    def close(self) -> None:
        self._spi.close()


class ClockedPinsTransport:
    """Data and clock on two ordinary GPIOs, clocked by gpiozero's software SPI bus (no select line:
    APA102s have none)."""

    def __init__(self, data_pin: int, clock_pin: int) -> None:
        from gpiozero import Device
        from gpiozero.pins.spi import SPISoftwareBus

        Device.ensure_pin_factory()
        self._bus = SPISoftwareBus(clock_pin, data_pin, None, pin_factory=Device.pin_factory)

    def write(self, data: list[int]) -> None:
        self._bus.transfer(data)

    def close(self) -> None:
        self._bus.close()


def open_transport(settings: LedSettings) -> Transport:
    if settings.data_pin is not None and settings.clock_pin is not None:
        return ClockedPinsTransport(settings.data_pin, settings.clock_pin)
    return SpiTransport(settings.spi_bus, settings.spi_device)


# -- animations: pure functions of (time, pixel count, level) ----------------------------------------

BLUE: RGB = (0, 0, 255)
WHITE: RGB = (255, 255, 255)
ORANGE: RGB = (255, 96, 0)
RED: RGB = (255, 0, 0)
GREEN: RGB = (0, 255, 0)
AMBER: RGB = (255, 160, 0)
MAGENTA: RGB = (255, 0, 255)


def _scale(colour: RGB, factor: float) -> RGB:
    f = max(0.0, min(1.0, factor))
    return (round(colour[0] * f), round(colour[1] * f), round(colour[2] * f))


def _solid(colour: RGB, n: int) -> list[RGB]:
    return [colour] * n


def _spinner(colour: RGB, t: float, n: int, turn_s: float, tail: float = 0.15) -> list[RGB]:
    head = int(t / turn_s * n) % n
    return [colour if i == head else _scale(colour, tail) for i in range(n)]


def _sweep(colour: RGB, t: float, n: int, sweep_s: float) -> list[RGB]:
    """A light running once round the ring per `sweep_s`, leaving the rest dark."""
    head = int(t / sweep_s * n) % n
    return [colour if i == head else OFF for i in range(n)]


def _breath(colour: RGB, t: float, n: int, period_s: float, low: float, high: float) -> list[RGB]:
    phase = 0.5 - 0.5 * math.cos(2 * math.pi * t / period_s)
    return _solid(_scale(colour, low + (high - low) * phase), n)


def _blink(colour: RGB, t: float, n: int, on_s: float, off_s: float) -> list[RGB]:
    return _solid(colour if (t % (on_s + off_s)) < on_s else OFF, n)


def glow(level: float) -> float:
    """Speaker RMS (0..1 of full scale) as a glow factor: -45 dBFS and below dim, -10 dBFS full."""
    if level <= 0:
        return 0.15
    db = 20 * math.log10(level)
    return 0.15 + 0.85 * max(0.0, min(1.0, (db + 45) / 35))


def _timer_ringing(t: float, n: int) -> list[RGB]:
    """Alternate pixels in amber, swapping four times a second: unlike every state's pattern."""
    odd = int(t / 0.25) % 2
    return [AMBER if (i % 2) == odd else OFF for i in range(n)] if n > 1 else _blink(AMBER, t, n, 0.25, 0.25)


Renderer = Callable[[float, int, float], list[RGB]]  # (seconds into the pattern, pixel count, level)

PATTERNS: dict[str, Renderer] = {
    "off": lambda t, n, lvl: _solid(OFF, n),
    "breath": lambda t, n, lvl: _breath(BLUE, t, n, 4.0, 0.02, 0.12),
    "waking": lambda t, n, lvl: _sweep(WHITE, t, n, 0.4),
    "connecting": lambda t, n, lvl: _spinner(BLUE, t, n, 1.0),
    "listening": lambda t, n, lvl: _solid(BLUE, n),
    "thinking": lambda t, n, lvl: _spinner(ORANGE, t, n, 0.6),
    "speaking": lambda t, n, lvl: _solid(_scale(GREEN, glow(lvl)), n),
    "error": lambda t, n, lvl: _blink(RED, t, n, 0.25, 0.75),
    "muted": lambda t, n, lvl: _solid(RED, n),
    "enrolling": lambda t, n, lvl: _breath(MAGENTA, t, n, 1.5, 0.1, 1.0),  # learning a voice
    "timer_ringing": lambda t, n, lvl: _timer_ringing(t, n),
    "announcing": lambda t, n, lvl: _spinner(_scale(GREEN, glow(lvl)), t, n, 1.5),  # unasked speech: a green turn
    "answered_elsewhere": lambda t, n, lvl: _solid(_scale(BLUE, 0.25), n),  # another device answers this wake
}
# Patterns whose frames do not change with time or level: drawn once.
STATIC = frozenset({"off", "listening", "muted", "answered_elsewhere"})


def pattern_for(state: State, idle: str = "off") -> str:
    if state == State.IDLE:
        return "breath" if idle == "breath" else "off"
    if state == State.RINGING:  # a due timer (appliance/ringing.py)
        return "timer_ringing"
    return str(state)


def render(pattern: str, t: float, count: int, level: float = 0.0) -> list[RGB]:
    return PATTERNS[pattern](t, count, level)


# -- the animation thread ------------------------------------------------------------------------------


class PixelRing:
    """Status pixels driven by appliance state; `play(name)` shows a named pattern over the state's
    (e.g. "timer_ringing") until `play(None)`."""

    def __init__(
        self,
        settings: LedSettings,
        level: Callable[[], float] = lambda: 0.0,
        transport: Transport | None = None,
    ) -> None:
        self.count = settings.count
        self.brightness = settings.brightness
        self.period_s = 1.0 / settings.fps
        self._idle = settings.idle
        self._level = level
        self._power = None
        if settings.power_pin is not None:
            from gpiozero import DigitalOutputDevice

            # The ring has no power until this line is high (ReSpeaker 4-Mic: GPIO5).
            self._power = DigitalOutputDevice(settings.power_pin, initial_value=True)
        try:
            self._transport = transport if transport is not None else open_transport(settings)
        except Exception:
            if self._power is not None:
                self._power.close()
            raise
        self._lock = threading.Lock()
        self._state_pattern = pattern_for(State.IDLE, self._idle)
        self._override: str | None = None
        self._since = time.monotonic()
        self._changed = threading.Event()
        self._stop = False
        self._smoothed = 0.0
        self.frames_written = 0
        self.last_frame: list[RGB] = []
        self._thread = threading.Thread(target=self._run, name="pixels", daemon=True)
        self._thread.start()

    @property
    def pattern(self) -> str:
        with self._lock:
            return self._current()

    def _current(self) -> str:
        return self._override or self._state_pattern

    def on_event(self, event: ApplianceEvent) -> None:
        """The pixels' subscription to the event stream: each state change shows its animation."""
        if isinstance(event, StateChanged):
            self.show(State(event.state))

    def show(self, state: State) -> None:
        with self._lock:
            before = self._current()
            self._state_pattern = pattern_for(state, self._idle)
            self._restart_if_changed(before)
        self._changed.set()

    def play(self, name: str | None) -> None:
        if name is not None and name not in PATTERNS:
            raise ValueError(f"no pixel pattern {name!r}; known: {', '.join(sorted(PATTERNS))}")
        with self._lock:
            before = self._current()
            self._override = name
            self._restart_if_changed(before)
        self._changed.set()

    def _restart_if_changed(self, before: str) -> None:
        if self._current() != before:
            self._since = time.monotonic()

    def _follow_level(self) -> float:
        """The speaker level, rising at once and falling over about 150 ms, so the glow does not flicker."""
        try:
            level = float(self._level())
        except Exception:
            level = 0.0
        decay = math.exp(-self.period_s / 0.15)
        self._smoothed = level if level >= self._smoothed else self._smoothed * decay + level * (1 - decay)
        return self._smoothed

    def _run(self) -> None:
        next_at = time.monotonic()
        while True:
            with self._lock:
                if self._stop:
                    break
                name = self._current()
                t = time.monotonic() - self._since
            level = self._follow_level() if name == "speaking" else 0.0
            frame = render(name, t, self.count, level)
            if frame != self.last_frame:
                self._write(frame)
            if name in STATIC:
                self._changed.wait()
                next_at = time.monotonic()
            else:
                next_at += self.period_s
                now = time.monotonic()
                if next_at < now:  # fell behind (a slow bus, a busy CPU): skip, do not burst
                    next_at = now
                self._changed.wait(timeout=next_at - now)
            self._changed.clear()

    def _write(self, frame: list[RGB]) -> None:
        try:
            self._transport.write(apa102_frame(frame, self.brightness))
            self.last_frame = frame
            self.frames_written += 1
        except Exception as exc:  # a bus error must not kill the animation thread
            log.warning("pixel write failed: %s", exc)

    def close(self) -> None:
        """Stop the animation, turn every pixel off, release the bus and the power line."""
        with self._lock:
            self._stop = True
        self._changed.set()
        self._thread.join(timeout=2)
        self._write(_solid(OFF, self.count))
        self._transport.close()
        if self._power is not None:
            self._power.off()
            self._power.close()
