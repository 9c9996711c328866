"""APA102 pixels: the frame format, one frame per state, and the real thread writing through
gpiozero's mock SPI (MockFactory + MockSPIDevice): brightness, power enable, off on exit."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from appliance.indicators.lights import build_status_lights
from appliance.indicators.pixels import (
    AMBER,
    BLUE,
    GREEN,
    OFF,
    ORANGE,
    RED,
    WHITE,
    PixelRing,
    apa102_frame,
    glow,
    pattern_for,
    render,
)
from appliance.settings import LedSettings
from appliance.state import State


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def received_bytes(bits: list[int]) -> list[int]:
    return [int("".join(str(int(b)) for b in bits[i : i + 8]), 2) for i in range(0, len(bits) - len(bits) % 8, 8)]


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[list[int]] = []
        self.closed = False

    def write(self, data: list[int]) -> None:
        self.writes.append(list(data))

    def close(self) -> None:
        self.closed = True


# -- the frame format ----------------------------------------------------------------------------


def test_frame_layout_start_pixels_end() -> None:
    frame = apa102_frame([(1, 2, 3), (250, 128, 0), (0, 0, 255)], brightness=8)
    assert frame == [0, 0, 0, 0, 0xE8, 3, 2, 1, 0xE8, 0, 128, 250, 0xE8, 255, 0, 0, 0, 0, 0, 0, 0]


def test_frame_brightness_is_five_bits_and_clamped() -> None:
    assert apa102_frame([WHITE], 31)[4] == 0xFF
    assert apa102_frame([WHITE], 0)[4] == 0xE0
    assert apa102_frame([WHITE], 99)[4] == 0xFF


def test_end_frame_grows_with_the_chain() -> None:
    # 32 zero bits plus at least one clock edge per two pixels: 12 pixels -> 4 + 1 bytes, 40 -> 4 + 3.
    assert len(apa102_frame([OFF] * 12, 8)) == 4 + 48 + 5
    assert len(apa102_frame([OFF] * 40, 8)) == 4 + 160 + 7


# -- one frame per state ---------------------------------------------------------------------------


def test_state_frames() -> None:
    n = 4
    assert render("off", 1.0, n) == [OFF] * n
    assert render("listening", 3.0, n) == [BLUE] * n
    assert render("muted", 0.0, n) == [RED] * n
    # waking: one white pixel sweeping round in 0.4 s
    assert render("waking", 0.0, n) == [WHITE, OFF, OFF, OFF]
    assert render("waking", 0.15, n) == [OFF, WHITE, OFF, OFF]
    # thinking: an orange head with a dim tail, one turn in 0.6 s
    dim_orange = (38, 14, 0)
    assert render("thinking", 0.0, n) == [ORANGE, dim_orange, dim_orange, dim_orange]
    assert render("thinking", 0.45, n) == [dim_orange, dim_orange, dim_orange, ORANGE]
    # error: red for 0.25 s of each second
    assert render("error", 0.1, n) == [RED] * n
    assert render("error", 0.5, n) == [OFF] * n
    assert render("error", 1.1, n) == [RED] * n
    # connecting: a blue spinner
    assert render("connecting", 0.3, n)[1] == BLUE


def test_idle_breath_stays_dim() -> None:
    low = render("breath", 0.0, 3)[0]
    high = render("breath", 2.0, 3)[0]  # half a 4 s period: the top of the breath
    assert low == (0, 0, 5) and high == (0, 0, 31)


def test_speaking_glow_follows_the_level() -> None:
    quiet = render("speaking", 0.0, 3, level=0.0)
    loud = render("speaking", 0.0, 3, level=0.5)  # -6 dBFS
    middle = render("speaking", 0.0, 3, level=10 ** (-27.5 / 20))  # halfway up the -45..-10 dB range
    assert quiet == [(0, round(255 * 0.15), 0)] * 3
    assert loud == [GREEN] * 3
    assert middle[0][1] == round(255 * (0.15 + 0.85 * 0.5))
    assert glow(0.001) < glow(0.01) < glow(0.1)


def test_timer_ringing_alternates() -> None:
    assert render("timer_ringing", 0.0, 4) == [AMBER, OFF, AMBER, OFF]
    assert render("timer_ringing", 0.3, 4) == [OFF, AMBER, OFF, AMBER]


# -- the thread, through gpiozero's mock SPI -------------------------------------------------------


def test_spi0_frames_brightness_and_off_on_exit(spi_pins: object) -> None:
    from gpiozero.pins.mock import MockSPIDevice

    # SPI0, CE0 as gpiozero maps it: clock GPIO11, MOSI GPIO10, MISO GPIO9, select GPIO8.
    chip = MockSPIDevice(clock_pin=11, mosi_pin=10, miso_pin=9, select_pin=8)
    ring = PixelRing(LedSettings(type="apa102", count=3, brightness=5, spi_bus=0, spi_device=0))
    try:
        wait_until(lambda: ring.frames_written >= 1, "the idle frame")
        assert received_bytes(chip.rx_buf) == apa102_frame([OFF] * 3, 5)
        ring.show(State.LISTENING)
        wait_until(lambda: ring.frames_written >= 2, "the listening frame")
        got = received_bytes(chip.rx_buf)
        assert got == [0, 0, 0, 0] + [0xE5, 255, 0, 0] * 3 + [0, 0, 0, 0, 0]
        ring.show(State.MUTED)
        wait_until(lambda: ring.frames_written >= 3, "the muted frame")
        assert received_bytes(chip.rx_buf)[4:8] == [0xE5, 0, 0, 255]
    finally:
        ring.close()
        chip.close()
    assert received_bytes(chip.rx_buf) == apa102_frame([OFF] * 3, 5)


def test_power_enable_pin_high_while_in_use(spi_pins: object) -> None:
    from gpiozero import Device

    transport = RecordingTransport()
    ring = PixelRing(LedSettings(type="apa102", count=12, power_pin=5), transport=transport)
    power = Device.pin_factory.pin(5)  # type: ignore[union-attr]
    assert power.state == 1
    ring.show(State.LISTENING)
    wait_until(lambda: transport.writes and transport.writes[-1][4:8] == [0xE8, 255, 0, 0], "listening")
    ring.close()
    assert power.state == 0
    assert transport.writes[-1] == apa102_frame([OFF] * 12, 8) and transport.closed


def test_clocked_pins_transport_for_the_voice_bonnet(spi_pins: object) -> None:
    from gpiozero.pins.mock import MockSPIDevice

    # The bonnet has no select line; the mock device needs one, so give it a pin nobody drives.
    chip = MockSPIDevice(clock_pin=6, mosi_pin=5, select_pin=26)
    ring = PixelRing(LedSettings(type="apa102", count=3, brightness=31, data_pin=5, clock_pin=6))
    try:
        wait_until(lambda: ring.frames_written >= 1, "the idle frame")
        chip.rx_buf.clear()
        ring.show(State.MUTED)
        wait_until(lambda: ring.frames_written >= 2, "the muted frame")
        assert received_bytes(chip.rx_buf) == apa102_frame([RED] * 3, 31)
    finally:
        ring.close()
        chip.close()


def test_named_pattern_over_the_state_and_back() -> None:
    transport = RecordingTransport()
    ring = PixelRing(LedSettings(type="apa102", count=2, fps=50), transport=transport)
    try:
        ring.show(State.LISTENING)
        ring.play("timer_ringing")
        assert ring.pattern == "timer_ringing"
        wait_until(lambda: any(w[4:12] == [0xE8, 0, 160, 255, 0xE8, 0, 0, 0] for w in transport.writes), "ringing")
        ring.show(State.SPEAKING)  # the state changes underneath; the named pattern stays
        assert ring.pattern == "timer_ringing"
        ring.play(None)
        assert ring.pattern == "speaking"
        with pytest.raises(ValueError, match="timer_ringing"):
            ring.play("fireworks")
    finally:
        ring.close()


def test_speaking_pixels_follow_the_players_level() -> None:
    transport = RecordingTransport()
    level = {"now": 0.0}
    ring = PixelRing(LedSettings(type="apa102", count=1, fps=50), level=lambda: level["now"], transport=transport)
    try:
        ring.show(State.SPEAKING)
        wait_until(lambda: transport.writes[-1][4:8] == [0xE8, 0, 38, 0], "the quiet glow")
        level["now"] = 0.5
        wait_until(lambda: transport.writes[-1][4:8] == [0xE8, 0, 255, 0], "the loud glow")
    finally:
        ring.close()


def test_factory_picks_the_lights(spi_pins: object) -> None:
    assert build_status_lights(LedSettings()) is None
    pixels = build_status_lights(LedSettings(type="apa102", count=3))
    assert isinstance(pixels, PixelRing)
    pixels.close()


def test_every_state_has_a_pixel_pattern() -> None:
    for state in State:
        assert render(pattern_for(state), 0.0, 4), state
    assert pattern_for(State.RINGING) == "timer_ringing"
