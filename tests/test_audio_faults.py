"""Audio device trouble through the real PortAudio/ALSA path: errors, backoff, recovery."""

from __future__ import annotations

from appliance.app import Appliance
from appliance.state import State
from appliance.testing.fifo_soundcard import ASOUNDRC, FifoSoundCard
from tests.inproc import make_settings, running, wait_until

EXTRA_MIC = """
pcm.usbmic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{mic}"
    format "raw"
    hint {{ show on description "hot-plugged microphone" }}
}}
"""


async def test_missing_device_errors_then_recovers_when_plugged_in(card: FifoSoundCard) -> None:
    asoundrc = card.home / ".asoundrc"
    original = asoundrc.read_text()
    app = Appliance(make_settings(audio={"input_device": "usbmic"}), "sk-test", detector=None)
    try:
        async with running(app) as log:
            await wait_until(lambda: len(log.events("error")) >= 2, 10, "two failed attempts", log)
            first = log.events("error")[0]
            assert first["kind"] == "audio_device"
            assert "usbmic" in first["message"]
            assert State.ERROR.value in log.states()
            # Retries back off instead of spinning.
            delays = [e["retry_in_s"] for e in log.events("error")]
            assert delays[1] >= delays[0]
            # Between retries the appliance stays in "error" (no "idle" flash on the LEDs).
            assert log.states() == [State.ERROR.value]
            assert app.state.state == State.ERROR
            # "Plug it in": the device appears in the ALSA configuration.
            asoundrc.write_text(ASOUNDRC.format(mic=card.mic_path, speaker=card.speaker_path)
                                + EXTRA_MIC.format(mic=card.mic_path))
            await wait_until(lambda: bool(log.events("recovered")), 10, "recovery", log)
            await wait_until(lambda: app.audio_ok, 5, "streams open", log)
            assert app.state.state == State.IDLE
            assert log.states()[-1] == State.IDLE.value and log.states().count(State.IDLE.value) == 1
    finally:
        asoundrc.write_text(original)


async def test_stream_that_stops_mid_run_is_reopened(card: FifoSoundCard) -> None:
    app = Appliance(make_settings(), "sk-test", detector=None)
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams open", log)
        mic = app.mic
        assert mic is not None and mic._stream is not None
        mic._stream.abort()  # the device went away under the stream
        await wait_until(lambda: bool(log.events("error")), 10, "the fault to be noticed", log)
        assert "input stream stopped" in log.events("error")[0]["message"]
        await wait_until(lambda: app.audio_ok and app.mic is not mic, 10, "a new stream", log)
        await wait_until(lambda: app.state.state == State.IDLE, 5, "idle again", log)
