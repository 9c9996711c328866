"""End to end: `appliance run` as a subprocess, real PortAudio/ALSA (FIFO-paced `file` PCMs),
real openWakeWord, the real Agents SDK against a fake Realtime server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import numpy as np
import pytest
import soxr

from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, best_match, read_wav, trim_silence
from tests.e2e_support import ApplianceProcess, appliance_env, bundled_rule

pytestmark = pytest.mark.e2e

HANDSHAKE_DELAY_S = 1.2


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    reply = read_wav(FIXTURES / "reply_24k.wav", 24000)
    async with FakeRealtimeServer(handshake_delay_s=HANDSHAKE_DELAY_S, reply_audio=reply.tobytes()) as srv:
        yield srv


async def test_wake_word_conversation(card: FifoSoundCard, server: FakeRealtimeServer) -> None:
    app = await ApplianceProcess(appliance_env(card.env, server.url)).start()
    try:
        await app.wait_ready()
        utterance = read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate)
        card.say(utterance)
        await app.wait_for(lambda: "speaking" in app.states(), 30, "the answer to play")
        await app.wait_for(lambda: app.states()[-1] == "idle" and "speaking" in app.states(), 30, "back to idle")
        ended = app.events("conversation_end")
    finally:
        rc = await app.stop()
    assert rc == 0, app.dump()
    assert "sk-test-not-a-real-key" not in app.all_output()
    # JSON logs go to stdout, one object a line; a normal run (wake, conversation, idle, SIGTERM) writes
    # nothing to stderr, not even LiteRT's native "INFO: Created TensorFlow Lite XNNPACK delegate" line.
    assert app.stderr_lines == [], app.stderr_lines
    assert server.connections[0]["authorization"] == "Bearer sk-test-not-a-real-key"

    # The wake word fired, from the model, with its scores, by the shipped verifier's rule (which score
    # carried it depends on frame alignment).
    wakes = app.events("wake")
    assert len(wakes) == 1, app.dump()
    assert wakes[0]["source"] == "wakeword" and wakes[0]["model"] == "hey_jarvis"
    assert bundled_rule().hit(wakes[0]["score"], wakes[0]["verifier_score"]), wakes[0]

    # The whole cycle, in order.
    states = app.states()
    for expected in ("waking", "connecting", "listening", "thinking", "speaking"):
        assert expected in states, states
    order = [states.index(s) for s in ("waking", "connecting", "listening", "speaking")]
    assert order == sorted(order), states
    assert states[-1] == "idle"
    assert ended and ended[0]["reason"] == "idle_timeout"

    # The session asked for the model in the URL and waited for the slow handshake.
    assert len(server.connections) == 1
    assert server.connections[0]["query"].get("model") == "gpt-realtime"
    assert ended[0]["connect_ms"] >= HANDSHAKE_DELAY_S * 1000 * 0.9

    # Speech said right after the wake word reached the server (pre-roll kept it while connecting).
    received = np.frombuffer(bytes(server.received_audio), dtype=np.int16)
    question = trim_silence(read_wav(FIXTURES / "what_time_only.wav", 24000))
    score, _ = best_match(received, question)
    assert score >= 0.8, f"'what time is it' not found in the audio the server received (corr {score:.2f})"

    # The tool ran, and its answer went back to the model.
    assert server.tool_outputs, "no function_call_output reached the server"
    assert str(dt.date.today().year) in server.tool_outputs[0]["output"]

    # The reply played at the device's rate and sounds like what the server sent.
    await asyncio.sleep(0.2)
    speaker = card.speaker_audio()
    reply = read_wav(FIXTURES / "reply_24k.wav", 24000)
    heard = soxr.resample(speaker, card.rate, 24000)
    score, offset = best_match(heard, reply)
    assert score >= 0.95, f"reply not found on the speaker (corr {score:.2f})"


async def test_no_wake_word_no_session(card: FifoSoundCard, server: FakeRealtimeServer) -> None:
    app = await ApplianceProcess(appliance_env(card.env, server.url)).start()
    try:
        await app.wait_ready()
        card.say(read_wav(FIXTURES / "negative.wav", card.rate))
        card.wait_said(30)
        await asyncio.sleep(1.5)
    finally:
        rc = await app.stop()
    assert rc == 0
    assert app.events("wake") == []
    assert server.connections == []
    assert set(app.states()) <= {"idle"}


async def test_sigterm_mid_conversation_stops_cleanly(card: FifoSoundCard) -> None:
    reply = read_wav(FIXTURES / "reply_24k.wav", 24000)
    async with FakeRealtimeServer(reply_audio=reply.tobytes()) as server:
        env = appliance_env(card.env, server.url, APPLIANCE_SESSION__IDLE_TIMEOUT_S="30")
        app = await ApplianceProcess(env).start()
        try:
            await app.wait_ready()
            card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
            await app.wait_for(lambda: "listening" in app.states(), 30, "a conversation")
            await server.wait_for(lambda: server.active_connections == 1, 5)
        finally:
            rc = await app.stop(timeout=5)
        await server.wait_for(lambda: server.active_connections == 0, 5)
    assert rc == 0, app.dump()
    assert app.events("conversation_end")[-1]["reason"] == "stopped"
    assert app.events("stop"), "no final log line"
