"""The fake Realtime server, driven by the real ``agents.realtime`` SDK.

These tests pin the fake's protocol to what the SDK accepts: a happy-path conversation
must produce no SDK ``error`` event and no event the openai types reject.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
import websockets
from agents import function_tool
from agents.realtime import (
    RealtimeAgent,
    RealtimeModelConfig,
    RealtimeRunConfig,
    RealtimeRunner,
    RealtimeSession,
    RealtimeSessionEvent,
)
from agents.realtime.model_inputs import RealtimeModelSendRawMessage

from appliance.testing.fake_realtime import SAMPLE_RATE, FakeRealtimeServer, load_reply_audio
from tests.audio_files import (
    HEY_JARVIS_WHAT_TIME,
    REPLY_24K,
    WHAT_TIME_ONLY,
    locate,
    pcm16_bytes,
    read_wav,
    silence,
)

CHUNK_MS = 20
CHUNK_BYTES = SAMPLE_RATE * 2 * CHUNK_MS // 1000


@dataclass
class ToolSpy:
    calls: int = 0


@dataclass
class Collected:
    events: list[RealtimeSessionEvent] = field(default_factory=list)
    raised: BaseException | None = None

    def of_type(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]

    @property
    def audio(self) -> bytes:
        return b"".join(e.audio.data for e in self.of_type("audio"))

    def answered(self) -> bool:
        """An audio answer finished: audio_end followed by agent_end."""
        kinds = [e.type for e in self.events]
        return "audio_end" in kinds and "agent_end" in kinds[kinds.index("audio_end") :]


def make_agent(spy: ToolSpy) -> RealtimeAgent[Any]:
    @function_tool
    def get_current_time() -> str:
        """Return the current local time."""
        spy.calls += 1
        return "15:10"

    return RealtimeAgent(name="assistant", instructions="Answer briefly.", tools=[get_current_time])


def model_config(server: FakeRealtimeServer) -> RealtimeModelConfig:
    return {"url": server.url + "?model=gpt-realtime", "api_key": "sk-test"}


RUN_CONFIG: RealtimeRunConfig = {
    "tracing_disabled": True,
    "model_settings": {
        "turn_detection": {"type": "semantic_vad", "interrupt_response": True, "create_response": True}
    },
}


async def start_session(server: FakeRealtimeServer, spy: ToolSpy) -> RealtimeSession:
    runner = RealtimeRunner(make_agent(spy), config=RUN_CONFIG)
    return await runner.run(model_config=model_config(server))


async def collect(session: RealtimeSession, into: Collected) -> None:
    try:
        async for event in session:
            into.events.append(event)
    except Exception as exc:  # what the SDK raises out of `async for`
        into.raised = exc


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def stream(session: RealtimeSession, pcm: bytes) -> None:
    """Send pcm16 24 kHz audio in 20 ms chunks (faster than real time)."""
    for start in range(0, len(pcm), CHUNK_BYTES):
        await session.send_audio(pcm[start : start + CHUNK_BYTES])
        await asyncio.sleep(0)


def sdk_errors(collected: Collected) -> list[Any]:
    return [e.error for e in collected.of_type("error")]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer() as fake:
        yield fake
    assert fake.invalid_events_sent == []
    assert fake.errors == []


@pytest.mark.asyncio
async def test_full_conversation_with_tool_call(server: FakeRealtimeServer) -> None:
    spy = ToolSpy()
    collected = Collected()
    speech = pcm16_bytes(HEY_JARVIS_WHAT_TIME, SAMPLE_RATE)
    session = await start_session(server, spy)
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await stream(session, speech)
        await stream(session, silence(1.0, SAMPLE_RATE))
        await wait_until(collected.answered)
        assert not consumer.done()
        # The fake mirrors the session the SDK configured.
        live = server.session
        assert live is not None and live["type"] == "realtime"
        assert live["audio"]["input"]["turn_detection"] == {
            "type": "semantic_vad",
            "interrupt_response": True,
            "create_response": True,
        }
    await asyncio.wait_for(consumer, 5)

    assert sdk_errors(collected) == []
    assert collected.raised is None
    assert server.invalid_events_sent == []

    # Connection: the model query parameter and the API key reached the server.
    assert len(server.connections) == 1
    conn = server.connections[0]
    assert conn["path"] == "/v1/realtime"
    assert conn["model"] == "gpt-realtime"
    assert conn["authorization"] == "Bearer sk-test"

    # The SDK configured the session; the fake mirrored its turn detection.
    turn_detection = [u["audio"]["input"]["turn_detection"] for u in server.session_updates if "audio" in u]
    assert turn_detection and turn_detection[-1]["type"] == "semantic_vad"
    assert [t["name"] for t in server.session_updates[0]["tools"]] == ["get_current_time"]

    # Exactly one user turn, carrying the streamed speech.
    assert len(server.user_turns) == 1
    assert bytes(server.received_audio[: len(speech)]) == speech
    turn_audio = server.user_turns[0]["audio"]
    assert 1.0 < len(turn_audio) / (2 * SAMPLE_RATE) < 3.0

    # The tool ran once and its output reached the server.
    assert spy.calls == 1
    assert len(server.tool_outputs) == 1
    assert server.tool_outputs[0]["output"] == "15:10"
    assert [e.tool.name for e in collected.of_type("tool_end")] == ["get_current_time"]

    # The answer audio arrived byte for byte, then audio_end and agent_end.
    assert collected.audio == load_reply_audio()
    assert len(collected.of_type("audio_end")) == 1
    assert len(collected.of_type("agent_end")) == 2  # tool-call response + audio response
    assert [r["status"] for r in server.responses] == ["completed", "completed"]
    transcripts = [
        e.item.content[0].transcript
        for e in collected.of_type("history_added")
        if e.item.type == "message" and e.item.role == "user"
    ]
    assert transcripts in ([None], ["what time is it"])


@pytest.mark.asyncio
async def test_server_received_audio_matches_the_question(server: FakeRealtimeServer) -> None:
    """What the server recorded can be correlated against the question-only fixture."""
    spy = ToolSpy()
    collected = Collected()
    session = await start_session(server, spy)
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await stream(session, pcm16_bytes(HEY_JARVIS_WHAT_TIME, SAMPLE_RATE))
        await stream(session, silence(1.0, SAMPLE_RATE))
        await wait_until(collected.answered)
    await asyncio.wait_for(consumer, 5)

    question = pcm16_bytes(WHAT_TIME_ONLY, SAMPLE_RATE)
    offset_s, score = locate(bytes(server.received_audio), question, SAMPLE_RATE)
    assert score > 0.85
    assert 1.0 < offset_s < 1.7  # after the 0.5 s lead-in and "hey jarvis,"
    # The committed turn covers the question too.
    _, turn_score = locate(server.user_turns[0]["audio"], question, SAMPLE_RATE)
    assert turn_score > 0.85
    _, rate = read_wav(WHAT_TIME_ONLY)
    assert rate == 48_000


@pytest.mark.asyncio
async def test_handshake_delay_is_applied() -> None:
    delay = 0.4
    async with FakeRealtimeServer(handshake_delay_s=delay) as server:
        spy = ToolSpy()
        started = time.monotonic()
        session = await start_session(server, spy)
        async with session:
            elapsed = time.monotonic() - started
            await server.wait_for(lambda: len(server.session_updates) >= 1)
        assert elapsed >= delay
        assert server.connections[0]["connected_at"] - server.connections[0]["handshake_started_at"] >= delay


@pytest.mark.asyncio
async def test_interrupt_now_makes_the_sdk_emit_audio_interrupted() -> None:
    # Real-time paced answer so the interruption lands while it is still streaming.
    async with FakeRealtimeServer(tool_name=None, reply_chunk_interval_s=None) as server:
        spy = ToolSpy()
        collected = Collected()
        session = await start_session(server, spy)
        async with session:
            consumer = asyncio.create_task(collect(session, collected))
            await stream(session, pcm16_bytes(HEY_JARVIS_WHAT_TIME, SAMPLE_RATE))
            await stream(session, silence(1.0, SAMPLE_RATE))
            await wait_until(lambda: len(collected.of_type("audio")) >= 2)
            await server.interrupt_now()
            await wait_until(lambda: bool(collected.of_type("audio_interrupted")))
            await wait_until(lambda: bool(collected.of_type("agent_end")))
            await server.wait_for(lambda: bool(server.truncations))
        await asyncio.wait_for(consumer, 5)

        assert sdk_errors(collected) == []
        assert server.responses[-1]["status"] == "cancelled"
        assert server.responses[-1]["status_details"]["reason"] == "turn_detected"
        assert len(collected.audio) < len(load_reply_audio())
        # The SDK told the server how much of the answer had been played.
        assert server.truncations[0]["item_id"] == collected.of_type("audio_interrupted")[0].item_id
        assert server.invalid_events_sent == []


@pytest.mark.asyncio
async def test_non_json_frame_raises_out_of_the_session_iterator(server: FakeRealtimeServer) -> None:
    """A non-JSON frame is a stored exception in the SDK: `async for event in session`
    raises ``json.JSONDecodeError`` and the session closes (no ``error`` event)."""
    collected = Collected()
    session = await start_session(server, ToolSpy())
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await server.wait_for(lambda: len(server.session_updates) >= 1)
        await server.send_raw("not json")
        await asyncio.wait_for(consumer, 5)
    assert isinstance(collected.raised, json.JSONDecodeError)
    assert sdk_errors(collected) == []


@pytest.mark.asyncio
async def test_send_error_becomes_an_sdk_error_event(server: FakeRealtimeServer) -> None:
    collected = Collected()
    session = await start_session(server, ToolSpy())
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await server.wait_for(lambda: len(server.session_updates) >= 1)
        await server.send_error("boom", code="server_error")
        await wait_until(lambda: bool(collected.of_type("error")))
        assert not consumer.done()
    await asyncio.wait_for(consumer, 5)
    assert sdk_errors(collected)[0].message == "boom"
    assert collected.raised is None


@pytest.mark.asyncio
async def test_dropped_connection_ends_the_session(server: FakeRealtimeServer) -> None:
    collected = Collected()
    session = await start_session(server, ToolSpy())
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await server.wait_for(lambda: len(server.session_updates) >= 1)
        await server.drop_connections(abrupt=True)
        await asyncio.wait_for(consumer, 5)
    assert isinstance(collected.raised, websockets.exceptions.ConnectionClosed)


@pytest.mark.asyncio
async def test_push_to_talk_commit_then_response_create(server: FakeRealtimeServer) -> None:
    spy = ToolSpy()
    collected = Collected()
    runner = RealtimeRunner(
        make_agent(spy), config={"tracing_disabled": True, "model_settings": {"turn_detection": None}}
    )
    session = await runner.run(model_config=model_config(server))
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        speech = pcm16_bytes(WHAT_TIME_ONLY, SAMPLE_RATE)
        await stream(session, speech[:-CHUNK_BYTES])
        await session.send_audio(speech[-CHUNK_BYTES:], commit=True)
        await server.wait_for(lambda: len(server.user_turns) == 1)
        assert server.responses == [] and not server.response_active  # commit alone does not answer
        # The SDK's send_audio(commit=True) does not ask for an answer; the app must.
        await session.model.send_event(RealtimeModelSendRawMessage(message={"type": "response.create"}))
        await wait_until(collected.answered)
    await asyncio.wait_for(consumer, 5)

    assert server.session_updates[0]["audio"]["input"]["turn_detection"] is None
    assert not any(
        e["type"] == "input_audio_buffer.speech_started" for e in server.server_events if "type" in e
    )
    assert spy.calls == 1
    assert collected.audio == load_reply_audio()
    assert sdk_errors(collected) == []


@pytest.mark.asyncio
async def test_rejected_handshake() -> None:
    async with FakeRealtimeServer() as server:
        server.reject_connections(401)
        session = await start_session(server, ToolSpy())
        with pytest.raises(websockets.exceptions.InvalidStatus) as excinfo:
            async with session:
                pass
        assert excinfo.value.response.status_code == 401
        assert server.connections == []


def test_default_reply_is_the_pcm16_24k_fixture() -> None:
    reply = load_reply_audio()
    samples, rate = read_wav(REPLY_24K)
    assert rate == SAMPLE_RATE
    assert reply == samples.astype("<i2").tobytes()
    assert 1.0 < len(reply) / (2 * SAMPLE_RATE) < 2.5


@pytest.mark.asyncio
async def test_graceful_close_ends_the_session_quietly(server: FakeRealtimeServer) -> None:
    collected = Collected()
    session = await start_session(server, ToolSpy())
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await server.wait_for(lambda: len(server.session_updates) >= 1)
        await server.drop_connections(abrupt=False)
        await asyncio.wait_for(consumer, 5)
    assert collected.raised is None
    assert sdk_errors(collected) == []


@pytest.mark.asyncio
async def test_client_interrupt_cancels_and_truncates() -> None:
    """Without server-side interrupt_response the SDK's interrupt() sends
    conversation.item.truncate and response.cancel; the fake cancels the response."""
    async with FakeRealtimeServer(tool_name=None, reply_chunk_interval_s=None) as server:
        collected = Collected()
        runner = RealtimeRunner(
            make_agent(ToolSpy()),
            config={
                "tracing_disabled": True,
                "model_settings": {
                    "turn_detection": {
                        "type": "server_vad",
                        "silence_duration_ms": 300,
                        "interrupt_response": False,
                    }
                },
            },
        )
        session = await runner.run(model_config=model_config(server))
        async with session:
            consumer = asyncio.create_task(collect(session, collected))
            await stream(session, pcm16_bytes(WHAT_TIME_ONLY, SAMPLE_RATE))
            await stream(session, silence(0.5, SAMPLE_RATE))
            await wait_until(lambda: len(collected.of_type("audio")) >= 2)
            await session.interrupt()
            await server.wait_for(lambda: bool(server.cancels) and bool(server.responses))
            await wait_until(lambda: bool(collected.of_type("agent_end")))
        await asyncio.wait_for(consumer, 5)

        assert server.session_updates[0]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert len(server.truncations) == 1
        assert server.responses[-1]["status"] == "cancelled"
        assert server.responses[-1]["status_details"]["reason"] == "client_cancelled"
        assert sdk_errors(collected) == []
        assert server.invalid_events_sent == []


@pytest.mark.asyncio
async def test_respond_on_commit_answers_push_to_talk_without_response_create() -> None:
    async with FakeRealtimeServer(respond_on_commit=True, tool_name=None) as server:
        collected = Collected()
        runner = RealtimeRunner(
            make_agent(ToolSpy()),
            config={"tracing_disabled": True, "model_settings": {"turn_detection": None}},
        )
        session = await runner.run(model_config=model_config(server))
        async with session:
            consumer = asyncio.create_task(collect(session, collected))
            await stream(session, pcm16_bytes(WHAT_TIME_ONLY, SAMPLE_RATE))
            await session.send_audio(b"", commit=True)
            await wait_until(collected.answered)
        await asyncio.wait_for(consumer, 5)
        assert collected.audio == load_reply_audio()
        assert not any(e["type"] == "response.create" for e in server.client_events)
        assert sdk_errors(collected) == []
        assert server.invalid_events_sent == []
