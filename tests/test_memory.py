"""Memory and collector set-up of the running appliance (the idle_rss_mb figure of bench_process)."""

from __future__ import annotations

import gc

from appliance.app import Appliance
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.inproc import make_settings, running, wait_until


async def test_start_up_objects_are_frozen_while_running(card: FifoSoundCard) -> None:
    """Full collections must not walk the start-up objects while the audio threads run."""
    app = Appliance(make_settings(), "sk", detector=None)
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams", log)
        frozen = gc.get_freeze_count()
    assert frozen > 10_000  # the SDK alone brings far more
    assert gc.get_freeze_count() == 0  # stopped: the process (here pytest) gets its collector back
