"""Hardware presets: the voice HATs people build on, as settings a preset fills in.

`APPLIANCE_HARDWARE=respeaker-2mic` (or a `hardware = "..."` line in the TOML file) sets the board's
button pin, LED type, count and wiring, the microphone channel and an ALSA device hint. Any of those
fields given explicitly (environment, a site TOML file) wins over the preset: the preset only fills
fields of a group that nobody set (pydantic's `model_fields_set`).

Each board's pins were checked against its maker's own material; the source is named beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

HardwareName = Literal["generic", "respeaker-2mic", "respeaker-4mic", "voice-bonnet"]

# The preset's ALSA hint: the seeed-voicecard driver names its WM8960 card "seeed-2mic-voicecard"
# and its AC108 card "seeed-4mic-voicecard"; Adafruit's Voice Bonnet guide installs the same
# WM8960 driver, so the bonnet shows up under the 2-mic name. A name substring, as
# APPLIANCE_AUDIO__INPUT_DEVICE takes it.
_WM8960_CARD = "seeed-2mic-voicecard"
_AC108_CARD = "seeed-4mic-voicecard"


@dataclass(frozen=True)
class Preset:
    name: HardwareName
    title: str
    # group name -> field -> value, applied to fields of the group that were not set explicitly
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (signal, Pi pin) rows for the wiring tables in docs/hardware.md
    wiring: tuple[tuple[str, str], ...] = ()


PRESETS: dict[HardwareName, Preset] = {
    "generic": Preset("generic", "Any sound card; button and LEDs as configured"),
    # Seeed ReSpeaker 2-Mics Pi HAT (v1, WM8960). Seeed's own examples (github.com/respeaker/mic_hat):
    # interfaces/pixels.py drives PIXELS_N = 3 APA102 LEDs through the `apa102` SPI driver
    # (SPI0: MOSI GPIO10, SCLK GPIO11) with no power-enable line; interfaces/button.py reads
    # BUTTON = 17 (active low, so pull-up). Two microphones: stereo capture, channel 0 is the left one.
    "respeaker-2mic": Preset(
        "respeaker-2mic",
        "Seeed ReSpeaker 2-Mics Pi HAT",
        {
            "audio": {"input_device": _WM8960_CARD, "output_device": _WM8960_CARD, "input_channel": 0},
            "button": {"pin": 17},
            "leds": {"type": "apa102", "count": 3, "spi_bus": 0, "spi_device": 0, "power_pin": None},
        },
        (("APA102 data (SDI)", "GPIO10 / SPI0 MOSI (pin 19)"), ("APA102 clock (CKI)", "GPIO11 / SPI0 SCLK (pin 23)"),
         ("Button", "GPIO17 (pin 11), to ground when pressed"), ("Audio", "I2S (GPIO18-21), I2C (GPIO2/3)")),
    ),
    # Seeed ReSpeaker 4-Mic Array for Raspberry Pi (AC108). Seeed's wiki: a ring of 12 APA102 LEDs;
    # Seeed's examples (github.com/respeaker/4mics_hat interfaces/pixels.py, and the usage note of
    # github.com/respeaker/pixel_ring) switch the LEDs' power on with `LED(5).on()` before use:
    # GPIO5 is the power-enable line, SPI0 carries the data. The board has no user button.
    "respeaker-4mic": Preset(
        "respeaker-4mic",
        "Seeed ReSpeaker 4-Mic Array for Raspberry Pi",
        {
            "audio": {"input_device": _AC108_CARD, "input_channel": 0},
            "leds": {"type": "apa102", "count": 12, "spi_bus": 0, "spi_device": 0, "power_pin": 5},
        },
        (("APA102 data (SDI)", "GPIO10 / SPI0 MOSI (pin 19)"), ("APA102 clock (CKI)", "GPIO11 / SPI0 SCLK (pin 23)"),
         ("LED power enable", "GPIO5 (pin 29), high = on"), ("Button", "none on the board"),
         ("Audio", "I2S (GPIO18-21), I2C (GPIO2/3); the AC108 has no speaker output")),
    ),
    # Adafruit Voice Bonnet (WM8960). Adafruit's guide (Blinka test code, "dotstar_test.py") drives
    # DotStar(board.D6, board.D5, 3): three DotStars with clock on GPIO6 and data on GPIO5, not on the
    # SPI bus, so they are clocked from those two pins; its button test reads board.D17 with a pull-up.
    "voice-bonnet": Preset(
        "voice-bonnet",
        "Adafruit Voice Bonnet",
        {
            "audio": {"input_device": _WM8960_CARD, "output_device": _WM8960_CARD, "input_channel": 0},
            "button": {"pin": 17},
            "leds": {"type": "apa102", "count": 3, "clock_pin": 6, "data_pin": 5, "power_pin": None},
        },
        (("DotStar data", "GPIO5 (pin 29)"), ("DotStar clock", "GPIO6 (pin 31)"),
         ("Button", "GPIO17 (pin 11), to ground when pressed"), ("Audio", "I2S (GPIO18-21), I2C (GPIO2/3)")),
    ),
}


def preset_values(name: HardwareName, audio_backend: str) -> dict[str, dict[str, Any]]:
    """The preset's values per settings group. ALSA device hints only mean something to the
    PortAudio backend: with `pulse` the sound server's default source and sink are used."""
    groups = {group: dict(values) for group, values in PRESETS[name].groups.items()}
    if audio_backend != "sounddevice" and "audio" in groups:
        groups["audio"].pop("input_device", None)
        groups["audio"].pop("output_device", None)
    return groups


def fill_unset(group: BaseModel, values: dict[str, Any]) -> BaseModel:
    """`group` with `values` for the fields nobody set explicitly, validated again."""
    unset = {k: v for k, v in values.items() if k not in group.model_fields_set}
    if not unset:
        return group
    explicit = {k: getattr(group, k) for k in group.model_fields_set}
    return type(group).model_validate({**unset, **explicit})
