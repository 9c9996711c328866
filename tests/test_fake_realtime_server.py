"""The fake Realtime server, driven by the real ``agents.realtime`` SDK.

These tests pin the fake's protocol to what the SDK accepts: a happy-path conversation
must produce no SDK ``error`` event and no event the openai types reject.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
import pytest_asyncio
import websockets
from agents import GuardrailFunctionOutput, OutputGuardrail, function_tool
from agents.realtime import (
    RealtimeAgent,
    RealtimeModelConfig,
    RealtimeRunConfig,
    RealtimeRunner,
    RealtimeSession,
    RealtimeSessionEvent,
)
from agents.realtime.model_inputs import RealtimeModelSendRawMessage
from openai import AsyncOpenAI
from openai.types.realtime import ClientSecretCreateResponse
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from appliance.audio.formats import MODEL_RATE as SAMPLE_RATE
from appliance.testing.fake_realtime import (
    KEY_SUBPROTOCOL_PREFIX,
    FakeRealtimeServer,
    ScriptedResponse,
    load_reply_audio,
)
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
    "model_settings": {"turn_detection": {"type": "semantic_vad", "interrupt_response": True, "create_response": True}},
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
@pytest.mark.parametrize("frame", ["not json", '{"type": "response.output_audio.delta", "delta": "AAAA'])
async def test_non_json_frame_raises_out_of_the_session_iterator(server: FakeRealtimeServer, frame: str) -> None:
    """A non-JSON (or truncated JSON) frame is a stored exception in the SDK: `async for event
    in session` raises ``json.JSONDecodeError`` and the session closes (no ``error`` event)."""
    collected = Collected()
    session = await start_session(server, ToolSpy())
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await server.wait_for(lambda: len(server.session_updates) >= 1)
        await server.send_raw(frame)
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
        await server.send_error("Slow down.", code="rate_limit_exceeded", error_type="rate_limit_error")
        await wait_until(lambda: bool(collected.of_type("error")))
        assert not consumer.done()
    await asyncio.wait_for(consumer, 5)
    error = sdk_errors(collected)[0]
    assert (error.message, error.code, error.type) == ("Slow down.", "rate_limit_exceeded", "rate_limit_error")
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
    assert not any(e["type"] == "input_audio_buffer.speech_started" for e in server.server_events if "type" in e)
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
        assert json.loads(excinfo.value.response.body)["error"]["code"] == "invalid_api_key"
        assert server.connections == []
        assert [r["reason"] for r in server.refused_connections] == ["reject_connections"]


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


# ---------------------------------------------------------------- scripted responses and tools
async def speak_and_wait(session: RealtimeSession, until: Callable[[], bool]) -> None:
    """One user turn (speech, then silence so the VAD ends it), then wait for ``until``."""
    await stream(session, pcm16_bytes(WHAT_TIME_ONLY, SAMPLE_RATE))
    await stream(session, silence(0.8, SAMPLE_RATE))
    await wait_until(until)


async def flush_client_events(session: RealtimeSession, server: FakeRealtimeServer) -> None:
    """Everything the SDK sent before this call has reached the fake: a marker event (a
    harmless buffer clear) travels the same ordered socket behind it."""

    def clears() -> int:
        return sum(e["type"] == "input_audio_buffer.clear" for e in server.client_events)

    before = clears()
    await session.model.send_event(RealtimeModelSendRawMessage(message={"type": "input_audio_buffer.clear"}))
    await server.wait_for(lambda: clears() > before)


@pytest.mark.asyncio
async def test_scripted_call_to_any_function_then_spoken_answer() -> None:
    received: list[tuple[str, str]] = []

    @function_tool
    def set_timer(duration: str, label: str) -> str:
        """Set a kitchen timer."""
        received.append((duration, label))
        return f"timer {label} set"

    script = [
        ScriptedResponse.calling("set_timer", {"duration": "5 minutes", "label": "tea"}),
        ScriptedResponse.saying("Your tea timer is running."),
    ]
    async with FakeRealtimeServer(tool_name=None, script=script) as server:
        collected = Collected()
        agent = RealtimeAgent(name="assistant", instructions="Answer briefly.", tools=[set_timer])
        session = await RealtimeRunner(agent, config=RUN_CONFIG).run(model_config=model_config(server))
        async with session:
            consumer = asyncio.create_task(collect(session, collected))
            await speak_and_wait(session, collected.answered)
        await asyncio.wait_for(consumer, 5)

        assert received == [("5 minutes", "tea")]
        assert [(c.name, json.loads(str(c.arguments))) for c in server.function_calls] == [
            ("set_timer", {"duration": "5 minutes", "label": "tea"})
        ]
        [output] = server.function_call_outputs
        assert (output.name, output.output, output.call_id) == (
            "set_timer",
            "timer tea set",
            server.function_calls[0].call_id,
        )
        assert output.response_requested_at is not None and output.response_requested_at >= output.received_at
        assert server.scripted_responses_left == 0
        # The follow-up response spoke the scripted transcript over the reply audio.
        done = [
            e["transcript"] for e in server.server_events if e.get("type") == "response.output_audio_transcript.done"
        ]
        assert done == ["Your tea timer is running."]
        deltas = "".join(
            e["delta"] for e in server.server_events if e.get("type") == "response.output_audio_transcript.delta"
        )
        assert deltas == "Your tea timer is running."
        assert collected.audio == load_reply_audio()
        assert sdk_errors(collected) == []
        assert server.invalid_events_sent == [] and server.errors == []


@pytest.mark.asyncio
async def test_unknown_tool_gets_an_error_output_and_no_response_request_until_the_client_asks() -> None:
    """The SDK answers a call to a tool it does not have with an error output but does not ask
    for a response (the appliance must); once asked, the fake speaks."""
    async with FakeRealtimeServer(tool_name=None, script=[ScriptedResponse.calling("open_garage_door")]) as server:
        collected = Collected()
        session = await start_session(server, ToolSpy())
        async with session:
            consumer = asyncio.create_task(collect(session, collected))
            await speak_and_wait(session, lambda: bool(collected.of_type("error")))
            await flush_client_events(session, server)
            [output] = server.function_call_outputs
            assert output.name == "open_garage_door"
            assert "not found" in output.output
            assert not output.response_requested
            assert not collected.answered()

            await session.model.send_event(RealtimeModelSendRawMessage(message={"type": "response.create"}))
            await wait_until(collected.answered)
        await asyncio.wait_for(consumer, 5)

        assert output.response_requested
        assert collected.audio == load_reply_audio()
        assert [r["status"] for r in server.responses] == ["completed", "completed"]
        assert server.invalid_events_sent == [] and server.errors == []


@pytest.mark.asyncio
async def test_scripted_transcript_trips_an_output_guardrail_and_the_refusal_is_spoken() -> None:
    def no_secrets(context: Any, agent: Any, output: str) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="secret" in output.lower())

    script = [
        # Paced so the guardrail (run every 10 characters) trips while the answer streams.
        ScriptedResponse.saying("The secret code is one two three four.", chunk_interval_s=0.1),
        ScriptedResponse.saying("Sorry, I can't talk about that."),
    ]
    async with FakeRealtimeServer(tool_name=None, script=script) as server:
        collected = Collected()
        agent = RealtimeAgent(
            name="assistant",
            instructions="Answer briefly.",
            output_guardrails=[OutputGuardrail(guardrail_function=no_secrets, name="no_secrets")],
        )
        config: RealtimeRunConfig = {**RUN_CONFIG, "guardrails_settings": {"debounce_text_length": 10}}
        session = await RealtimeRunner(agent, config=config).run(model_config=model_config(server))
        async with session:
            consumer = asyncio.create_task(collect(session, collected))
            await speak_and_wait(session, lambda: len(server.responses) == 2)
            await wait_until(lambda: bool(collected.of_type("guardrail_tripped")))
        await asyncio.wait_for(consumer, 5)

        tripped = collected.of_type("guardrail_tripped")[0]
        assert "secret" in tripped.message.lower()
        assert [r["status"] for r in server.responses] == ["cancelled", "completed"]
        feedback = [
            e["item"]["content"][0]["text"]
            for e in server.client_events
            if e["type"] == "conversation.item.create" and e["item"].get("role") == "user"
        ]
        assert feedback == ["guardrail triggered: no_secrets"]
        done = [
            e["transcript"] for e in server.server_events if e.get("type") == "response.output_audio_transcript.done"
        ]
        assert done == ["Sorry, I can't talk about that."]
        assert server.invalid_events_sent == [] and server.errors == []


@pytest.mark.asyncio
async def test_session_updates_show_instructions_tools_and_voice_across_a_handoff() -> None:
    weather = RealtimeAgent(name="weather", instructions="You are the weather specialist.")
    triage = RealtimeAgent(name="triage", instructions="Route the question.", handoffs=[weather])
    async with FakeRealtimeServer(tool_name=None, script=[ScriptedResponse.calling("transfer_to_weather")]) as server:
        collected = Collected()
        config: RealtimeRunConfig = {**RUN_CONFIG, "model_settings": {**RUN_CONFIG["model_settings"], "voice": "cedar"}}
        session = await RealtimeRunner(triage, config=config).run(model_config=model_config(server))
        async with session:
            consumer = asyncio.create_task(collect(session, collected))
            await speak_and_wait(session, collected.answered)
        await asyncio.wait_for(consumer, 5)

        assert server.instructions_sent[0] == "Route the question."
        assert server.instructions_sent[-1] == "You are the weather specialist."
        assert server.tools_offered[0] == ["transfer_to_weather"]
        assert server.tools_offered[-1] == []
        assert set(server.voices_sent) == {"cedar"}
        assert [e.to_agent.name for e in collected.of_type("handoff")] == ["weather"]
        [output] = server.function_call_outputs
        assert output.name == "transfer_to_weather" and output.response_requested
        assert server.invalid_events_sent == [] and server.errors == []


@pytest.mark.asyncio
async def test_failing_response_ends_failed_with_the_code(server: FakeRealtimeServer) -> None:
    server.tool_name = None
    server.script_responses(ScriptedResponse.failing("rate_limit_exceeded"))
    collected = Collected()
    session = await start_session(server, ToolSpy())
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await speak_and_wait(session, lambda: bool(server.responses))
        await wait_until(lambda: bool(collected.of_type("agent_end")))
    await asyncio.wait_for(consumer, 5)
    [response] = server.responses
    assert response["status"] == "failed"
    assert response["status_details"]["error"]["code"] == "rate_limit_exceeded"
    assert response["output"] == []
    assert collected.audio == b""


# ---------------------------------------------------------------- client secrets and browser auth
API_KEY = "sk-fake-right"


def openai_client(server: FakeRealtimeServer, api_key: str = API_KEY) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=api_key, base_url=server.http_base_url, max_retries=0)


async def raw_http(server: FakeRealtimeServer, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send one HTTP/1.1 request as bytes; return the status and the JSON body."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def browser_protocols(key: str) -> list[Subprotocol]:
    """What @openai/agents-realtime offers from a browser."""
    return [Subprotocol(p) for p in ("realtime", KEY_SUBPROTOCOL_PREFIX + key, "openai-agents-sdk.0.3.0")]


async def first_event(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return event


@pytest.mark.asyncio
async def test_client_secret_from_the_openai_client_starts_a_browser_session() -> None:
    async with FakeRealtimeServer(api_key=API_KEY) as server:
        requested = {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Be brief.",
            "audio": {"output": {"voice": "cedar"}},
        }
        created = await openai_client(server).realtime.client_secrets.create(
            session=requested,  # type: ignore[arg-type]
            expires_after={"anchor": "created_at", "seconds": 300},
        )
        assert isinstance(created, ClientSecretCreateResponse)
        assert created.value.startswith("ek_")
        assert abs(created.expires_at - (time.time() + 300)) < 60
        assert created.session.type == "realtime" and created.session.instructions == "Be brief."
        [request] = server.client_secret_requests
        assert request.status == 200 and request.value == created.value
        assert request.body is not None and request.body["session"] == requested

        # A browser connects with the ephemeral key as a subprotocol and gets that session.
        async with websockets.connect(
            server.url + "?model=gpt-realtime", subprotocols=browser_protocols(created.value)
        ) as ws:
            assert ws.subprotocol == "realtime"
            created_event = await first_event(ws)
            assert created_event["type"] == "session.created"
            assert created_event["session"]["instructions"] == "Be brief."
            assert created_event["session"]["audio"]["output"]["voice"] == "cedar"
            speech = pcm16_bytes(WHAT_TIME_ONLY, SAMPLE_RATE)
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(speech).decode()}))
            await server.wait_for(lambda: len(server.received_audio) == len(speech))
        conn = server.connections[-1]
        assert (conn["auth"], conn["key_kind"], conn["client_secret"], conn["subprotocol"]) == (
            "subprotocol",
            "client_secret",
            created.value,
            "realtime",
        )
        assert bytes(server.received_audio) == speech
        assert server.invalid_events_sent == [] and server.errors == []


@pytest.mark.asyncio
async def test_client_secret_refuses_a_wrong_or_missing_key() -> None:
    async with FakeRealtimeServer(api_key=API_KEY) as server:
        with pytest.raises(openai.AuthenticationError) as excinfo:
            await openai_client(server, "sk-wrong").realtime.client_secrets.create(session={"type": "realtime"})
        assert excinfo.value.status_code == 401
        assert excinfo.value.code == "invalid_api_key"
        assert "sk-wrong" not in str(excinfo.value)

        body = b'{"session": {"type": "realtime"}}'
        status, error = await raw_http(
            server,
            b"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body,
        )
        assert status == 401 and set(error["error"]) == {"message", "type", "param", "code"}

        status, error = await raw_http(
            server,
            b"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + API_KEY.encode()
            + b"\r\nContent-Length: 9\r\n\r\nnot json!",
        )
        assert status == 400 and error["error"]["code"] == "invalid_json"
        assert [r.status for r in server.client_secret_requests] == [401, 401, 400]
        assert all(r.value is None for r in server.client_secret_requests)


@pytest.mark.asyncio
async def test_websocket_auth_by_header_or_subprotocol_and_refusals() -> None:
    async with FakeRealtimeServer(api_key=API_KEY) as server:
        url = server.url + "?model=gpt-realtime"
        # The SDK's way: the API key in an Authorization header.
        session = await RealtimeRunner(make_agent(ToolSpy()), config=RUN_CONFIG).run(
            model_config={"url": url, "api_key": API_KEY}
        )
        async with session:
            await server.wait_for(lambda: len(server.session_updates) >= 1)
        # A browser's way: the API key as a subprotocol (useInsecureApiKey).
        async with websockets.connect(url, subprotocols=browser_protocols(API_KEY)) as ws:
            assert (await first_event(ws))["type"] == "session.created"
        # An ephemeral key in the header works too.
        secret = server.issue_client_secret({"type": "realtime", "instructions": "Hi."})
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {secret}"}) as ws:
            assert (await first_event(ws))["session"]["instructions"] == "Hi."
        assert [(c["auth"], c["key_kind"]) for c in server.connections] == [
            ("header", "api_key"),
            ("subprotocol", "api_key"),
            ("header", "client_secret"),
        ]

        expired = server.issue_client_secret(expires_in_s=-1)
        server.expire_client_secrets(secret)
        refused = [
            browser_protocols("sk-wrong"),
            browser_protocols(expired),
            browser_protocols(secret),
            [Subprotocol("realtime")],
        ]
        for protocols in refused:
            with pytest.raises(websockets.exceptions.InvalidStatus) as excinfo:
                async with websockets.connect(url, subprotocols=protocols):
                    pass
            assert excinfo.value.response.status_code == 401
            error = json.loads(excinfo.value.response.body)["error"]
            assert error["type"] == "invalid_request_error"
            assert "sk-wrong" not in excinfo.value.response.body.decode()
        assert [r["auth"] for r in server.refused_connections] == ["subprotocol"] * 3 + [None]
        assert len(server.connections) == 3
        assert server.invalid_events_sent == [] and server.errors == []


# ---------------------------------------------------------------- errors on demand
@pytest.mark.asyncio
async def test_never_answer_accepts_and_stays_silent_until_released(server: FakeRealtimeServer) -> None:
    server.never_answer()
    async with websockets.connect(server.url + "?model=gpt-realtime") as ws:
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "x"}}))
        await ws.send(json.dumps({"type": "response.create"}))
        await server.wait_for(lambda: len(server.client_events) == 2)
        assert server.server_events == [] and server.responses == []
        assert server.active_connections == 1
        server.never_answer(False)
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "y"}}))
        answer = await first_event(ws)
    assert answer["type"] == "session.updated" and answer["session"]["instructions"] == "y"


@pytest.mark.asyncio
async def test_unknown_server_event_type_is_an_sdk_error_event_and_the_session_goes_on(
    server: FakeRealtimeServer,
) -> None:
    """An event type the SDK does not know (a newer API) is sent unchecked; the SDK reports its
    validation failure as an ``error`` session event and still answers the next turn."""
    collected = Collected()
    session = await start_session(server, ToolSpy())
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await server.wait_for(lambda: len(server.session_updates) >= 1)
        await server.send_event({"type": "response.future_thing", "detail": 1}, validate=False)
        await speak_and_wait(session, collected.answered)
    await asyncio.wait_for(consumer, 5)
    assert any(e.get("type") == "response.future_thing" for e in server.server_events)
    assert server.invalid_events_sent == []
    [error] = sdk_errors(collected)
    assert "response.future_thing" in str(error)
    assert collected.raised is None


@pytest.mark.asyncio
async def test_audio_delta_larger_than_the_sdk_frame_limit_closes_the_session(server: FakeRealtimeServer) -> None:
    collected = Collected()
    session = await start_session(server, ToolSpy())
    async with session:
        consumer = asyncio.create_task(collect(session, collected))
        await server.wait_for(lambda: len(server.session_updates) >= 1)
        await server.send_audio_delta(bytes(9 * 1024 * 1024))  # > the SDK's 8 MiB max_size once base64'd
        await asyncio.wait_for(consumer, 5)
    assert isinstance(collected.raised, websockets.exceptions.ConnectionClosedError)
    assert collected.raised.sent is not None and collected.raised.sent.code == 1009
