"""LEDs and button through gpiozero's MockFactory: real gpiozero objects, simulated pins."""

from __future__ import annotations

import asyncio
import time

import pytest

from appliance.indicators.leds import StatusLeds
from appliance.settings import LedSettings
from appliance.state import State
from appliance.triggers.button import PushButton


def test_rgb_led_colours_per_state(mock_pins: object) -> None:
    from gpiozero import Device

    leds = StatusLeds(LedSettings(red_pin=5, green_pin=6, blue_pin=13, pwm=False))
    pins = {n: Device.pin_factory.pin(n) for n in (5, 6, 13)}  # type: ignore[union-attr]
    try:
        leds.show(State.LISTENING)
        assert (pins[5].state, pins[6].state, pins[13].state) == (0, 0, 1)
        leds.show(State.SPEAKING)
        assert (pins[5].state, pins[6].state, pins[13].state) == (0, 1, 0)
        leds.show(State.MUTED)
        assert (pins[5].state, pins[6].state, pins[13].state) == (1, 0, 0)
        leds.show(State.IDLE)
        assert (pins[5].state, pins[6].state, pins[13].state) == (0, 0, 0)
        leds.show(State.ERROR)  # blinks red
        time.sleep(1.2)
        red_values = [s.state for s in pins[5].states]
        assert red_values.count(1) >= 2 and pins[6].state == 0
    finally:
        leds.close()


def test_single_led_on_and_blink(mock_pins: object) -> None:
    from gpiozero import Device

    leds = StatusLeds(LedSettings(pin=27))
    pin = Device.pin_factory.pin(27)  # type: ignore[union-attr]
    try:
        leds.show(State.LISTENING)
        assert pin.state == 1
        leds.show(State.THINKING)  # no PWM: a pulse becomes a blink
        time.sleep(1.2)
        assert [s.state for s in pin.states].count(0) >= 2
    finally:
        leds.close()


def test_no_pins_no_leds() -> None:
    assert not StatusLeds.configured(LedSettings())
    with pytest.raises(ValueError):
        StatusLeds(LedSettings())


async def test_short_and_long_press(mock_pins: object) -> None:
    from gpiozero import Device

    loop = asyncio.get_running_loop()
    events: list[str] = []
    button = PushButton(17, loop, lambda: events.append("short"), lambda: events.append("long"),
                        bounce_s=0, hold_s=0.3)
    pin = Device.pin_factory.pin(17)  # type: ignore[union-attr]
    try:
        pin.drive_low()
        await asyncio.sleep(0.05)
        pin.drive_high()
        await asyncio.sleep(0.1)
        assert events == ["short"]
        pin.drive_low()
        await asyncio.sleep(0.6)
        pin.drive_high()
        await asyncio.sleep(0.1)
        assert events == ["short", "long"]  # a long press is not also a short one
    finally:
        button.close()


def test_rgb_led_plays_timer_ringing_over_the_state_and_returns(mock_pins: object) -> None:
    from gpiozero import Device

    leds = StatusLeds(LedSettings(red_pin=5, green_pin=6, blue_pin=13, pwm=False))
    pins = {n: Device.pin_factory.pin(n) for n in (5, 6, 13)}  # type: ignore[union-attr]
    try:
        leds.show(State.LISTENING)
        leds.play("timer_ringing")  # amber without PWM: red and green blinking together
        time.sleep(0.7)
        assert [s.state for s in pins[5].states].count(1) >= 2 and pins[13].state == 0
        seen = len(pins[6].states)
        leds.show(State.SPEAKING)  # the state changes underneath; the ringing goes on (green still blinks)
        time.sleep(0.5)
        assert {s.state for s in pins[6].states[seen:]} == {0, 1}
        leds.play(None)
        assert (pins[5].state, pins[6].state, pins[13].state) == (0, 1, 0)  # back to speaking
        with pytest.raises(ValueError, match="timer_ringing"):
            leds.play("fireworks")
    finally:
        leds.close()
