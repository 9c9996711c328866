"""A voice-HAT preset in the running appliance: a button-started conversation on the FIFO card with
the ReSpeaker 4-Mic preset's twelve pixels read back, frame by frame, from gpiozero's mock SPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from appliance.app import Appliance
from appliance.indicators.pixels import BLUE, OFF, apa102_frame
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import make_settings, press, running, wait_until

pytestmark = pytest.mark.e2e

BUTTON, POWER = 17, 5


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    reply = read_wav(FIXTURES / "reply_24k.wav", 24000)
    async with FakeRealtimeServer(handshake_delay_s=0.3, reply_audio=reply.tobytes()) as srv:
        yield srv


def recording_chip() -> object:
    """SPI0 CE0's far end, keeping every frame it was sent (the select line frames each one)."""
    from gpiozero.pins.mock import MockSPIDevice

    class Chip(MockSPIDevice):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.frames: list[list[int]] = []
            super().__init__(*args, **kwargs)

        def on_start(self) -> None:
            self.keep()
            super().on_start()

        def keep(self) -> None:
            bits = [int(b) for b in self.rx_buf]
            if bits:
                self.frames.append([int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)])

    return Chip(clock_pin=11, mosi_pin=10, miso_pin=9, select_pin=8)


def pixels(frame: list[int], count: int = 12) -> list[tuple[int, int, int]]:
    words = frame[4 : 4 + 4 * count]
    return [(words[i + 3], words[i + 2], words[i + 1]) for i in range(0, len(words), 4)]


async def test_respeaker_4mic_pixels_through_a_conversation(
    card: FifoSoundCard, server: FakeRealtimeServer, spi_pins: object
) -> None:
    chip = recording_chip()
    settings = make_settings(
        hardware="respeaker-4mic",
        realtime={"url": server.url},
        button={"pin": BUTTON, "bounce_s": 0},  # the 4-Mic board has none: one on GPIO17, explicitly
        leds={"fps": 15},  # software SPI on mock pins is slow; the preset still sets the rest
        session={"idle_timeout_s": 2},
    )
    assert (settings.leds.type, settings.leds.count, settings.leds.power_pin) == ("apa102", 12, POWER)
    app = Appliance(settings, "sk-test", detector=None)
    power = spi_pins.pin(POWER)  # type: ignore[attr-defined]
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams open", log)
        assert power.state == 1
        await press(spi_pins.pin(BUTTON))  # type: ignore[attr-defined]
        await wait_until(lambda: "listening" in log.states(), 10, "the session to open", log)
        card.say(read_wav(FIXTURES / "what_time_only.wav", card.rate))
        await wait_until(lambda: "speaking" in log.states(), 20, "the answer", log)
        await wait_until(lambda: log.states()[-1] == "idle", 30, "back to idle", log)
        await asyncio.sleep(0.2)
    chip.keep()  # type: ignore[attr-defined]
    frames = [pixels(f) for f in chip.frames]  # type: ignore[attr-defined]
    assert all(len(f) == 12 for f in frames)
    assert all(raw[4] == 0xE8 for raw in chip.frames)  # type: ignore[attr-defined]  # brightness 8 on every pixel
    # connecting (0.3 s handshake): a blue spinner, the head moving; listening: all blue. (Waking
    # lasts only until the session starts connecting: too short to be sure of a frame.)
    spinner = [f.index(BLUE) for f in frames if f.count(BLUE) == 1 and f.count((0, 0, 38)) == 11]
    assert len(set(spinner)) >= 2, spinner
    assert [BLUE] * 12 in frames
    # speaking: green, and the glow moves with the answer's loudness (several different levels)
    greens = {f[0][1] for f in frames if f[0][0] == 0 and f[0][2] == 0 and f[0][1] > 0 and len(set(f)) == 1}
    assert len(greens) >= 3, greens
    assert max(greens) > 150
    # off on exit, power line low
    assert chip.frames[-1] == apa102_frame([OFF] * 12, 8)  # type: ignore[attr-defined]
    assert power.state == 0
