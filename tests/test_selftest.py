"""`appliance check` through the real audio path (FIFO card), mock GPIO pins, the bundled sample."""

from __future__ import annotations

import asyncio
import os
import sys

import numpy as np

from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.e2e_support import REPO


async def run_check(card: FifoSoundCard, **env: str) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    full.update(card.env)
    full.update({"GPIOZERO_PIN_FACTORY": "mock", "APPLIANCE_AUDIO__INPUT_DEVICE": "mic",
                 "APPLIANCE_AUDIO__OUTPUT_DEVICE": "speaker", "APPLIANCE_AUDIO__INPUT_RATE": "48000",
                 "APPLIANCE_AUDIO__OUTPUT_RATE": "48000"})
    full.update(env)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "appliance", "check", cwd=REPO, env=full,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_check_passes_with_a_live_microphone(card: FifoSoundCard) -> None:
    rng = np.random.default_rng(0)
    card.say((rng.standard_normal(card.rate * 8) * 2000).astype(np.int16))
    rc, out = await run_check(card, APPLIANCE_LEDS__PIN="27", APPLIANCE_BUTTON__PIN="17")
    assert rc == 0, out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))}
    assert set(lines) >= {"audio", "speaker", "microphone", "wake", "leds", "button"}
    assert "48000 Hz" in lines["audio"]
    assert "dBFS" in lines["microphone"]
    assert "GPIO17 reads released" in lines["button"]
    assert "blinked" in lines["leds"]
    # The tone reached the speaker.
    await asyncio.sleep(0.3)
    assert np.abs(card.speaker_audio().astype(np.int32)).max() > 3000


async def test_check_fails_on_a_silent_microphone_and_a_missing_device(card: FifoSoundCard) -> None:
    rc, out = await run_check(card)
    assert rc == 1, out
    assert "FAIL  microphone" in out and "no signal" in out
    rc, out = await run_check(card, APPLIANCE_AUDIO__INPUT_DEVICE="no-such-mic")
    assert rc == 1
    assert "FAIL  audio devices" in out and "no-such-mic" in out


async def test_devices_lists_the_card_with_channels_and_rates(card: FifoSoundCard) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    env.update(card.env)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "appliance", "devices", cwd=REPO, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = {line.split()[1]: line for line in out.decode().splitlines() if line.strip()}
    assert "mic" in lines and "speaker" in lines
    assert "in " in lines["mic"] and "48000" in lines["mic"]
    assert "out " in lines["speaker"]
