"""Hardware presets: each board's pins and LEDs, and explicit settings winning over a preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.settings import Settings


def test_generic_is_todays_behaviour() -> None:
    s = Settings()
    assert s.hardware == "generic"
    assert s.leds.type == "gpio" and s.button.pin is None and s.audio.input_device is None
    assert s.audio.input_channel == 0


def test_respeaker_2mic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_HARDWARE", "respeaker-2mic")
    s = Settings()
    assert (s.leds.type, s.leds.count, s.leds.spi_bus, s.leds.spi_device) == ("apa102", 3, 0, 0)
    assert s.leds.power_pin is None and s.leds.data_pin is None
    assert s.button.pin == 17
    assert s.audio.input_device == "seeed-2mic-voicecard" and s.audio.output_device == "seeed-2mic-voicecard"
    assert s.audio.input_channel == 0


def test_respeaker_4mic_powers_its_ring_from_gpio5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_HARDWARE", "respeaker-4mic")
    s = Settings()
    assert (s.leds.type, s.leds.count, s.leds.power_pin, s.leds.spi_bus) == ("apa102", 12, 5, 0)
    assert s.button.pin is None  # the board has no button
    assert s.audio.input_device == "seeed-4mic-voicecard" and s.audio.output_device is None


def test_voice_bonnet_clocks_its_dotstars_on_gpio6_and_5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_HARDWARE", "voice-bonnet")
    s = Settings()
    assert (s.leds.type, s.leds.count, s.leds.clock_pin, s.leds.data_pin) == ("apa102", 3, 6, 5)
    assert s.button.pin == 17


def test_explicit_environment_wins_over_the_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_HARDWARE", "respeaker-4mic")
    monkeypatch.setenv("APPLIANCE_LEDS__COUNT", "6")
    monkeypatch.setenv("APPLIANCE_BUTTON__PIN", "26")
    monkeypatch.setenv("APPLIANCE_AUDIO__INPUT_CHANNEL", "2")
    monkeypatch.setenv("APPLIANCE_AUDIO__INPUT_DEVICE", "USB")
    s = Settings()
    assert s.leds.count == 6 and s.leds.power_pin == 5  # the rest of the preset still applies
    assert s.button.pin == 26
    assert s.audio.input_channel == 2 and s.audio.input_device == "USB"


def test_site_file_wins_over_the_preset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('hardware = "respeaker-2mic"\n[leds]\ntype = "gpio"\npin = 27\n')
    monkeypatch.setenv("APPLIANCE_CONFIG_FILE", str(site))
    s = Settings()
    assert s.hardware == "respeaker-2mic"
    assert s.leds.type == "gpio" and s.leds.pin == 27
    assert s.button.pin == 17


def test_pulse_backend_drops_the_alsa_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_HARDWARE", "respeaker-2mic")
    monkeypatch.setenv("APPLIANCE_AUDIO__BACKEND", "pulse")
    s = Settings()
    assert s.audio.input_device is None and s.audio.output_device is None
    assert s.leds.type == "apa102"


def test_unknown_board_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("APPLIANCE_HARDWARE", "respeaker-6mic")
    with pytest.raises(ValidationError, match="respeaker-2mic"):
        Settings()


def test_half_a_software_clocked_chain_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("APPLIANCE_LEDS__DATA_PIN", "5")
    with pytest.raises(ValidationError, match="clock_pin"):
        Settings()
