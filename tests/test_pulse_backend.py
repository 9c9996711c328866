"""The `pulse` audio backend against a private PulseAudio daemon: device listing, `appliance check`
(with a voice-HAT preset's pixels and button on mock pins), and a clear error without a server."""

from __future__ import annotations

import asyncio
import os
import sys
import wave
from pathlib import Path

import numpy as np

from tests.e2e_support import REPO
from tests.pulse_harness import RATE, PulseSoundServer


async def run_python(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """A child Python in the repository with `env` over a clean environment: (exit code, output)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    full.update(env)
    proc = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=REPO, env=full,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    return await run_python("-m", "appliance", *args, env=env)


async def test_devices_lists_sources_and_sinks(pulse: PulseSoundServer) -> None:
    rc, out = await run_cli("devices", env={**pulse.env, "APPLIANCE_AUDIO__BACKEND": "pulse"})
    assert rc == 0, out
    lines = out.splitlines()
    mic = next(line for line in lines if "(mic_sink.monitor)" in line)
    speaker = next(line for line in lines if "(speaker_sink)" in line)
    assert "[PulseAudio]" in mic and "in 1ch" in mic
    assert "out 1ch" in speaker and "48000" in speaker


async def test_check_on_pulse_with_a_respeaker_preset(pulse: PulseSoundServer, tmp_path: Path) -> None:
    noise = tmp_path / "noise.wav"
    with wave.open(str(noise), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.random.default_rng(0).standard_normal(RATE * 10) * 2000).astype(np.int16).tobytes())
    player = pulse.say(noise)  # someone talking while the check records
    env = {**pulse.env, "GPIOZERO_PIN_FACTORY": "mock", "APPLIANCE_AUDIO__BACKEND": "pulse",
           "APPLIANCE_HARDWARE": "respeaker-2mic",
           "APPLIANCE_AUDIO__INPUT_DEVICE": "mic_sink.monitor", "APPLIANCE_AUDIO__OUTPUT_DEVICE": "speaker_sink"}
    rc, out = await run_cli("check", env=env)
    player.terminate()
    assert rc == 0, out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))}
    assert "(pulse)" in lines["audio"] and "48000 Hz" in lines["audio"]
    assert "dBFS" in lines["microphone"]
    assert "3 APA102 pixels" in lines["leds"]  # the preset's pixels, on gpiozero's mock SPI
    assert "GPIO17" in lines["button"]  # the preset's button
    await asyncio.sleep(2.0)  # parec writes its recording in fragments
    assert np.abs(pulse.speaker_audio().astype(np.int32)).max() > 3000  # the tone reached the speaker


async def test_no_server_is_a_clear_error(tmp_path: Path) -> None:
    env = {"APPLIANCE_AUDIO__BACKEND": "pulse", "PULSE_SERVER": f"unix:{tmp_path}/nothing-here",
           "XDG_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)}
    rc, out = await run_cli("devices", env=env)
    assert rc == 1
    assert "cannot reach a PulseAudio/PipeWire server" in out


MISSING_SOURCE = """
from appliance.audio.backends import AudioDeviceError, DeviceInfo
from appliance.audio.backends.pulse import PulseBackend
from appliance.audio.capture import MicStream
mic = MicStream(DeviceInfo(0, "gone", "PulseAudio", 1, 0, 48000.0, key="no_such_source"), 48000,
                backend=PulseBackend())
try:
    mic.start()
except AudioDeviceError as exc:
    print("AudioDeviceError:", exc)
print("active:", mic.active)
"""


async def test_a_missing_source_is_a_device_error(pulse: PulseSoundServer) -> None:
    # In a child process: libpulse's connection thread must not outlive the test server inside the
    # test process, which runs the FIFO sound card for every later test (a CI run whose card went
    # silent right after this test ran it in-process).
    rc, out = await run_python("-c", MISSING_SOURCE, env=pulse.env)
    assert rc == 0, out
    assert "AudioDeviceError:" in out and "no_such_source" in out, out
    assert "active: False" in out, out
