"""Memory and collector set-up of the running appliance (the idle_rss_mb figure of appliance.bench.process)."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from appliance.app import Appliance
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.inproc import make_settings, running, wait_until

REPO = Path(__file__).resolve().parents[1]


async def test_start_up_objects_are_frozen_while_running(card: FifoSoundCard) -> None:
    """Full collections must not walk the start-up objects while the audio threads run."""
    app = Appliance(make_settings(), "sk", detector=None)
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams", log)
        frozen = gc.get_freeze_count()
    assert frozen > 10_000  # the SDK alone brings far more
    assert gc.get_freeze_count() == 0  # stopped: the process (here pytest) gets its collector back


def test_gpiozero_is_not_loaded_without_pins() -> None:
    """No button or LED pin configured (the default): the appliance does not load gpiozero."""
    code = (
        "import asyncio, sys\n"
        "from appliance.app import Appliance\n"
        "from appliance.settings import Settings\n"
        "app = Appliance(Settings(openai_api_key='sk'), 'sk', None)\n"
        "app._loop = asyncio.new_event_loop()\n"
        "app._setup_gpio()\n"
        "assert app.button is None and app.leds is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gpiozero'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
