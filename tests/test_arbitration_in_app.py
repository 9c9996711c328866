"""One answer per home, the appliance's side: a wake this device was chosen to answer, and then another
device of the home turned out to answer it too and heard it better (integrations/arbitration.py,
`on_outranked`). The conversation this device began ends, whether it exists yet or not, through the
real appliance, FIFO card and fake Realtime server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from appliance.triggers.wakeword import WakeWordDetector
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import make_settings, running, wait_until

pytestmark = pytest.mark.e2e


class AnswersThenGivesWay:
    """Stands in for `Arbitration`: this device answers; `outrank()` is the other device's `answering`."""

    def __init__(self, at_once: bool) -> None:
        self.at_once = at_once  # say it before the conversation exists (while waking)
        self.on_outranked: Callable[[str], None] | None = None

    async def should_answer(self, score: float, on_outranked: Callable[[str], None] | None = None) -> bool:
        self.on_outranked = on_outranked
        if self.at_once and on_outranked is not None:
            asyncio.get_running_loop().call_soon(on_outranked, "living")  # runs once the wake has begun
        return True

    def outrank(self) -> None:
        assert self.on_outranked is not None
        self.on_outranked("living")


async def run_one(card: FifoSoundCard, at_once: bool) -> tuple[list[dict[str, Any]], FakeRealtimeServer, Any]:
    async with FakeRealtimeServer() as server:
        app = Appliance(make_settings(realtime={"url": server.url}), "sk", WakeWordDetector(["hey_jarvis"]))
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            arbitration = AnswersThenGivesWay(at_once)
            app.controls.arbitration = arbitration  # type: ignore[assignment]
            card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
            if not at_once:
                await wait_until(lambda: "listening" in log.states(), 20, "the session", log)
                arbitration.outrank()
            await wait_until(lambda: bool(log.events("conversation_end")), 20, "the end", log)
            await wait_until(lambda: app.state.state.value == "idle", 10, "idle", log)
            return log.events("conversation_end"), server, log


async def test_outranked_while_waking_the_conversation_ends_before_it_connects(card: FifoSoundCard) -> None:
    (ended,), server, log = await run_one(card, at_once=True)
    assert ended["reason"] == "answered_elsewhere"
    assert server.connections == [] and not log.events("session_open")  # no session spent on it


async def test_outranked_in_the_conversation_it_ends(card: FifoSoundCard) -> None:
    (ended,), server, log = await run_one(card, at_once=False)
    assert ended["reason"] == "answered_elsewhere"
    assert len(server.connections) == 1 and "speaking" not in log.states()
