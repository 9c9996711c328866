"""Across restarts, through `python -m appliance run` (real wake word, real SDK, fake server): a
remembered fact and a timer set in one process; in the next process on the same data directory
the timer rings at start-up, and the next conversation's agent is told, unasked, the fact and
that the timer rang."""

from __future__ import annotations

import tempfile

import pytest

from appliance.testing.fake_realtime import FakeRealtimeServer, FunctionCall, ScriptedResponse
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.e2e_support import ApplianceProcess, appliance_env
from tests.test_agent_e2e import SHORT_REPLY

pytestmark = pytest.mark.e2e


async def wake_and_ask(app: ApplianceProcess, card: FifoSoundCard) -> None:
    await app.wait_ready()
    card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
    await app.wait_for(lambda: "listening" in app.states(), 40, "a conversation")


async def test_memory_and_timers_survive_a_restart(card: FifoSoundCard) -> None:
    data_dir = tempfile.mkdtemp(prefix="appliance-data-")
    async with FakeRealtimeServer(reply_audio=SHORT_REPLY, tool_name=None) as server:
        server.script_responses(ScriptedResponse(calls=(
            FunctionCall("remember", {"fact": "The cat is called Miso"}),
            FunctionCall("set_timer", {"duration": "3 seconds", "label": "tea"}),
        )))
        env = appliance_env(card.env, server.url, APPLIANCE_DATA_DIR=data_dir, APPLIANCE_AGENT__TIMER_RING_S="1.5")
        first = await ApplianceProcess(env).start()
        try:
            await wake_and_ask(first, card)
            await server.wait_for(lambda: len(server.function_call_outputs) == 2, 30)
        finally:
            assert await first.stop() == 0, first.dump()
        assert [(e["action"], e["label"]) for e in first.events("timer")] == [("set", "tea")]
        assert "Miso" not in server.instructions_sent[0]

        second = await ApplianceProcess(env).start()
        try:
            await second.wait_for(lambda: len(second.events("timer")) >= 2, 60, "the timer to ring and stop")
            await second.wait_for(lambda: second.states()[-1:] == ["idle"], 10, "idle after the ring")
            await wake_and_ask(second, card)
            await server.wait_for(lambda: len(server.instructions_sent) >= 2, 20)
        finally:
            assert await second.stop() == 0, second.dump()
    assert [(e["action"], e["label"], e.get("by")) for e in second.events("timer")] == [
        ("rang", "tea", None), ("dismissed", "tea", "timeout")]
    assert "ringing" in second.states()
    told = server.instructions_sent[-1]
    assert "- The cat is called Miso" in told
    assert "these timers rang: tea" in told
