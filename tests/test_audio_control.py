"""PortAudio control calls run off the loop with a timeout; a hung call is abandoned and reported."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from appliance.audio.control import AudioControl
from appliance.audio.devices import AudioDeviceError


async def test_a_call_runs_off_the_loop_and_returns_its_result() -> None:
    control = AudioControl(timeout_s=5)
    loop_thread = threading.get_ident()
    ran_on = await control.call("probing", threading.get_ident)
    assert ran_on != loop_thread


async def test_any_failure_comes_back_as_an_audio_device_error_naming_the_call() -> None:
    def broken() -> None:
        raise OSError("PaErrorCode -9999")

    with pytest.raises(AudioDeviceError, match="rescanning failed: OSError: PaErrorCode -9999"):
        await AudioControl().call("rescanning", broken)


async def test_a_hung_call_times_out_keeps_the_loop_free_and_its_late_result_is_discarded() -> None:
    release = threading.Event()
    discarded: list[str] = []
    control = AudioControl(timeout_s=0.3)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    with pytest.raises(AudioDeviceError, match="opening did not return within 0.3 s"):
        await control.call("opening", lambda: release.wait() and "stream", discard=discarded.append)
    ticker.cancel()
    assert ticks >= 10  # the loop kept running while the call hung
    # While it hangs, further calls are refused at once instead of piling up threads.
    with pytest.raises(AudioDeviceError, match="not answering \\(opening has not returned\\)"):
        await control.call("closing", lambda: None)
    release.set()
    deadline = time.monotonic() + 2
    while control.hung and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert discarded == ["stream"]  # what it opened late is closed, not leaked
    assert await control.call("closing", lambda: "closed") == "closed"
