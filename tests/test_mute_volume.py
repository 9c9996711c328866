"""Mute is a privacy promise and volume a preference: both survive audio faults and restarts."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.audio.devices import DeviceInfo
from appliance.audio.playback import Player
from appliance.state import State
from appliance.streams import volume_gain
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.inproc import make_settings, press, running, wait_until

pytestmark = pytest.mark.e2e


async def test_mute_survives_an_audio_fault_and_a_restart(card: FifoSoundCard, mock_pins: object) -> None:
    settings = make_settings(button={"pin": 17, "bounce_s": 0, "hold_s": 0.3})
    button = mock_pins.pin(17)  # type: ignore[attr-defined]
    app = Appliance(settings, "sk-test", detector=None)
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams open", log)
        await press(button, hold_s=0.5)
        await wait_until(lambda: app.state.state == State.MUTED, 5, "muted", log)
        mic = app.mic
        assert mic is not None and mic._stream is not None
        mic._stream.abort()  # the microphone vanished
        await wait_until(lambda: bool(log.events("recovered")) or app.mic is not mic and app.audio_ok, 15,
                         "the audio to come back", log)
        await wait_until(lambda: app.state.state != State.ERROR, 10, "out of error", log)
        assert app.state.state == State.MUTED and app.muted
        assert [(e["muted"], e["reason"]) for e in log.events("mute")] == [(True, "button")]
        assert "error" in log.states()
    # A restart on the same data directory is still muted, until unmuted.
    again = Appliance(settings, "sk-test", detector=None)
    async with running(again) as log:
        await wait_until(lambda: again.audio_ok, 10, "streams open", log)
        assert again.state.state == State.MUTED
        assert log.events("state")[0]["reason"] == "restored"
        await press(button, hold_s=0.5)
        await wait_until(lambda: again.state.state == State.IDLE, 5, "unmuted", log)
    assert Appliance(settings, "sk-test", detector=None).muted is False


async def test_muting_during_a_conversation_ends_it(card: FifoSoundCard, mock_pins: object) -> None:
    async with FakeRealtimeServer() as server:
        app = Appliance(make_settings(realtime={"url": server.url}, button={"pin": 17, "bounce_s": 0},
                                      session={"idle_timeout_s": 30}), "sk-test", detector=None)
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            await press(mock_pins.pin(17))  # type: ignore[attr-defined]
            await wait_until(lambda: app.state.state == State.LISTENING, 10, "listening", log)
            app.controls.set_muted(True)
            await wait_until(lambda: app.state.state == State.MUTED, 5, "muted", log)
            assert log.events("conversation_end")[-1]["reason"] == "api"
            assert app.controls.start().ok is False  # muted: no conversation starts


def test_volume_scales_playback_and_is_kept(tmp_path: object) -> None:
    settings = make_settings()
    app = Appliance(settings, "sk-test", detector=None)
    assert app.volume == 100
    assert app.controls.set_volume(150).values["volume"] == 100
    assert app.controls.set_volume(50).values["volume"] == 50
    assert Appliance(settings, "sk-test", detector=None).volume == 50
    player = Player(DeviceInfo(0, "x", "ALSA", 0, 1, 48000.0), 24000)
    player.gain = volume_gain(50)
    player.enqueue_device_rate(np.full(100, 20000, dtype=np.int16))
    assert int(player._segments[0].samples.max()) == 5000  # 50 % is a quarter of the amplitude (-12 dB)
