"""No exception from a device, a file or the network may end `appliance run`: each is logged, and the
appliance carries on (in-process, the FIFO sound card, the fake Realtime server, a MockFactory button)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sounddevice as sd

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.inproc import make_settings, press, running, wait_until

BUTTON = 17


async def test_portaudio_error_from_a_rescan_is_retried(card: FifoSoundCard, monkeypatch: pytest.MonkeyPatch) -> None:
    import appliance.streams as app_module

    real_find, real_init = app_module.find_device, sd._initialize  # type: ignore[attr-defined]
    calls = {"find": 0, "init": 0}

    def find_once_missing(spec: object, direction: str, backend: object = None) -> object:
        calls["find"] += 1
        if calls["find"] == 1:
            raise app_module.AudioDeviceError("no input device matching 'mic' (unplugged)")
        return real_find(spec, direction, backend)  # type: ignore[arg-type]

    def initialize_fails_once() -> None:
        calls["init"] += 1
        if calls["init"] == 1:  # as after a USB power cycle: Pa_Initialize reports an error
            raise sd.PortAudioError("Error initializing PortAudio: Unanticipated host error", -9999)
        real_init()

    monkeypatch.setattr(app_module, "find_device", find_once_missing)
    monkeypatch.setattr(sd, "_initialize", initialize_fails_once)
    app = Appliance(make_settings(), "sk-test", detector=None)
    async with running(app) as log:
        await wait_until(lambda: calls["init"] >= 1 and len(log.events("error")) >= 2, 10, "the failed rescan", log)
        await wait_until(lambda: app.audio_ok, 15, "streams open after the failed rescan", log)
        await wait_until(lambda: bool(log.events("recovered")), 5, "recovery", log)
    messages = [e["message"] for e in log.events("error")]
    assert any("re-scan" in m and "PortAudio" in m for m in messages), messages
    assert calls["init"] >= 2


async def test_instructions_file_that_vanishes_uses_the_last_good_text(
    card: FifoSoundCard, mock_pins: object, tmp_path: Path
) -> None:
    instructions = tmp_path / "instructions.md"
    instructions.write_text("You are the kitchen assistant. Be brief.")
    async with FakeRealtimeServer() as server:
        settings = make_settings(realtime={"url": server.url}, button={"pin": BUTTON, "bounce_s": 0},
                                 agent={"instructions_file": instructions}, session={"idle_timeout_s": 30})
        app = Appliance(settings, "sk-test", detector=None)
        button = mock_pins.pin(BUTTON)  # type: ignore[attr-defined]
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            for n in range(1, 4):
                if n == 2:
                    instructions.unlink()  # removed (or unreadable) between conversations
                if n == 3:
                    instructions.mkdir()  # replaced by a directory: another OSError
                await press(button)
                await wait_until(lambda n=n: log.states().count("listening") == n, 10, f"session {n}", log)
                await press(button)
                await wait_until(lambda n=n: len(log.events("conversation_end")) == n, 10, f"end {n}", log)
            shutil.rmtree(instructions)
            assert not log.events("error"), log.events("error")
            assert app.state.state.value == "idle"
    sent = [u.get("instructions") for u in server.session_updates if "instructions" in u]
    assert sent and set(sent) == {"You are the kitchen assistant. Be brief."}, sent
    warnings = log.events("instructions_unreadable")
    assert len(warnings) == 1, warnings  # logged once, not per conversation
    assert str(instructions) in warnings[0]["message"] and "last good" in warnings[0]["message"]


def test_a_button_press_while_the_audio_reopens_is_ignored_with_a_log_line(
    mock_pins: object, caplog: pytest.LogCaptureFixture
) -> None:
    """CI saw `assert self.pipeline is not None` raise in the press callback: the audio had just
    failed and was being reopened (no pipeline yet) while the state was still idle."""
    from appliance.events import Wake

    app = Appliance(make_settings(), "sk-test", detector=None)
    assert app.pipeline is None and app.state.state.value == "idle"
    with caplog.at_level("INFO", logger="appliance"):
        app.begin(Wake(source="button"))
    assert app.state.state.value == "idle"
    assert any(getattr(r, "event", None) == "wake_ignored" and getattr(r, "reason", None) == "audio_reopening"
               for r in caplog.records)
    # An event like any other: counted for the fleet's dashboards (and sent to device API clients).
    assert app.telemetry.registry.get_sample_value("appliance_wakes_ignored_total", {"reason": "audio_reopening"}) == 1
