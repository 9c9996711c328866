"""The agent layer end to end, in-process: the real Agents SDK against the fake Realtime server, the
FIFO sound card, real MCP servers. Each conversation is started as the device API does, the
question is spoken into the microphone, and the fake's scripted model calls the tools."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer, FunctionCall, ScriptedResponse
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import EventLog, make_settings, running, wait_until
from tests.test_agent_tools import Forecast, forecast  # noqa: F401 (the fixture)
from tests.test_mcp_servers import HOUSEHOLD, http_server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
# A short answer (0.4 s tone) keeps conversations with several answers quick.
_t = np.arange(int(0.4 * 24000)) / 24000
SHORT_REPLY = (np.sin(2 * np.pi * 440 * _t) * 8000).astype(np.int16).tobytes()


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(reply_audio=SHORT_REPLY, tool_name=None) as srv:
        yield srv


def calls(*pairs: tuple[str, dict[str, Any]]) -> ScriptedResponse:
    return ScriptedResponse(calls=tuple(FunctionCall(name, args) for name, args in pairs))


async def converse(app: Appliance, log: EventLog, card: FifoSoundCard, until: Any, what: str) -> None:
    """Start a conversation, ask the question, wait for `until`."""
    await wait_until(lambda: app.audio_ok and app.state.state.value == "idle", 15, "the appliance idle", log)
    assert app.controls.start().ok
    await wait_until(lambda: app.conversation is not None and app.state.state.value == "listening", 15,
                     "the session", log)
    card.say(read_wav(FIXTURES / "what_time_only.wav", card.rate))
    await wait_until(until, 40, what, log)


def outputs(server: FakeRealtimeServer) -> dict[str, Any]:
    return {o.name: o for o in server.function_call_outputs}


async def test_builtin_tools_round_trip_and_goodbye(card: FifoSoundCard, server: FakeRealtimeServer) -> None:
    # The SDK runs one response's calls concurrently: what depends on another call comes in a later response.
    server.script_responses(
        calls(("set_timer", {"duration": "10 minutes", "label": "pasta"}), ("remember", {"fact": "Anna is vegetarian"}),
              ("change_volume", {"delta": -10})),
        calls(("list_timers", {}), ("get_current_time", {})),
        calls(("set_volume", {"percent": 30}), ("end_conversation", {})),
    )
    app = Appliance(make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 20}), "sk-test", None)
    before = app.volume
    async with running(app) as log:
        await converse(app, log, card, lambda: bool(log.events("conversation_end")), "the goodbye")
        got = outputs(server)
        facts_after_first = [f.text for f in app.memory.facts()]
        timers_after_first = [t.label for t in app.timers.pending()]
        # A second conversation takes them back.
        server.script_responses(calls(("cancel_timer", {"label": "pasta"}), ("forget", {"fact": "vegetarian"})))
        await converse(app, log, card, lambda: len(server.function_call_outputs) == len(got) + 2, "two more outputs")
        app.controls.stop()
    later = {o.name: o.output for o in server.function_call_outputs[len(got):]}
    assert later == {"cancel_timer": "Cancelled: pasta.", "forget": "Forgotten: Anna is vegetarian"}
    assert app.timers.pending() == [] and app.memory.facts() == []
    assert got["set_timer"].output == "Timer 'pasta' set for 10 minutes."
    assert "pasta:" in got["list_timers"].output
    assert got["remember"].output == "Remembered: Anna is vegetarian"
    assert got["change_volume"].output == f"Volume is now {before - 10} percent."
    assert got["set_volume"].output == "Volume is now 30 percent." and app.volume == 30
    assert str(np.datetime64("today", "Y")) in got["get_current_time"].output
    assert "Say a short goodbye" in got["end_conversation"].output
    assert all(o.response_requested for o in got.values())
    assert log.events("conversation_end")[0]["reason"] == "goodbye"
    assert facts_after_first == ["Anna is vegetarian"] and timers_after_first == ["pasta"]
    # The second conversation's agent was told the fact and the running timer, unasked.
    assert "- Anna is vegetarian" in server.instructions_sent[-1] and "pasta (" in server.instructions_sent[-1]
    tool_lines = {e["tool"]: e for e in log.events("tool")}
    assert tool_lines["set_timer"]["arguments"] == {"duration": "10 minutes", "label": "pasta"}
    assert [(e["action"], e["label"]) for e in log.events("timer")] == [("set", "pasta"), ("cancelled", "pasta")]
    # The goodbye was spoken before the end.
    assert "speaking" in log.states() and np.abs(card.speaker_audio()).max() > 1000


async def test_a_failing_tool_still_ends_in_spoken_audio(
    card: FifoSoundCard, server: FakeRealtimeServer, tmp_path: Path
) -> None:
    """Unknown tool, raising tool, timing-out tool, dead MCP server: the model gets an error result
    and a response.create, the person hears an answer, the log says what happened."""
    servers = tmp_path / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {
        "house": {"command": sys.executable, "args": [HOUSEHOLD, "stdio"]},
        "gone": {"command": "/nonexistent/mcp-server"},
    }}))
    server.script_responses(calls(
        ("fly_to_the_moon", {}), ("get_weather", {"place": "Oslo"}), ("slow", {"seconds": 5}), ("boom", {}),
    ))
    settings = make_settings(
        realtime={"url": server.url}, session={"idle_timeout_s": 20},
        agent={"weather_url": "http://127.0.0.1:9", "tool_timeout_s": 1}, mcp={"servers_file": str(servers)},
    )
    app = Appliance(settings, "sk-test", None)
    async with running(app) as log:
        await converse(app, log, card, lambda: len(server.function_call_outputs) == 4, "four tool outputs")
        await wait_until(lambda: log.states().count("speaking") >= 1 and log.states()[-1] == "listening", 30,
                         "the answers to play", log)
        app.controls.stop()
    got = outputs(server)
    assert got["fly_to_the_moon"].output == "Tool fly_to_the_moon not found"
    assert got["get_weather"].output.startswith("TOOL ERROR: the weather service cannot be reached")
    assert got["slow"].output.startswith("TOOL ERROR: it timed out")
    assert got["boom"].output.startswith("TOOL ERROR: the house server reported an error: Error executing tool boom"), \
        got["boom"].output
    # Each got a response.create (the unknown tool's from the appliance: the SDK sends none).
    assert all(o.response_requested for o in got.values()), got
    errors = {e["tool"]: e.get("error") for e in log.events("tool")}
    assert errors["fly_to_the_moon"] == "unknown tool"
    assert errors["get_weather"] == "the weather service cannot be reached"
    assert errors["slow"] == "it timed out"
    assert errors["boom"] == "the house server reported an error: Error executing tool boom"
    assert [e["server"] for e in log.events("mcp") if e["action"] == "failed"][:1] == ["gone"]
    assert np.abs(card.speaker_audio()).max() > 1000


async def test_an_unknown_tool_alone_still_gets_a_response(card: FifoSoundCard, server: FakeRealtimeServer) -> None:
    """The SDK answers a call to a tool it does not have with "not found" and asks for no response;
    alone in its response, nothing else would ask either: the appliance must."""
    server.script_responses(ScriptedResponse.calling("fly_to_the_moon"))
    app = Appliance(make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 20}), "sk-test", None)
    async with running(app) as log:
        await converse(app, log, card, lambda: len(server.function_call_outputs) == 1, "the tool output")
        await wait_until(lambda: "speaking" in log.states() and log.states()[-1] == "listening", 20,
                         "an answer after the unknown tool", log)
        app.controls.stop()
    (output,) = server.function_call_outputs
    assert output.output == "Tool fly_to_the_moon not found" and output.response_requested
    assert [e.get("error") for e in log.events("tool")] == ["unknown tool"]
    assert np.abs(card.speaker_audio()).max() > 1000


async def test_mcp_tools_are_offered_and_answered(
    card: FifoSoundCard, server: FakeRealtimeServer, http_server: str, tmp_path: Path  # noqa: F811
) -> None:
    servers = tmp_path / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {
        "house": {"command": sys.executable, "args": [HOUSEHOLD, "stdio"], "env": {"HOUSEHOLD_NAME": "${WHO}"}},
        "remote": {"url": http_server, "headers": {"Authorization": "Bearer ${REMOTE_TOKEN}"}},
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]},
    }}))
    os.environ.update(WHO="the Müllers", REMOTE_TOKEN="s3cret")
    server.script_responses(calls(
        ("whose_house", {}), ("remote_pantry_count", {"item": "flour"}),
        ("convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
    ))
    app = Appliance(make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 20},
                                  mcp={"servers_file": str(servers)}), "sk-test", None)
    try:
        async with running(app) as log:
            await converse(app, log, card, lambda: len(server.function_call_outputs) == 3, "three tool outputs")
            app.controls.stop()
    finally:
        for name in ("WHO", "REMOTE_TOKEN"):
            os.environ.pop(name, None)
    offered = set(server.tools_offered[0])
    assert {"whose_house", "pantry_count", "remote_pantry_count", "convert_time", "set_timer"} <= offered
    got = outputs(server)
    assert "the house of the Müllers" in got["whose_house"].output
    assert "2 flour in the pantry" in got["remote_pantry_count"].output
    assert "Asia/Tokyo" in got["convert_time"].output and "21:00" in got["convert_time"].output
    assert {e["server"] for e in log.events("mcp") if e["action"] == "connected"} == {"house", "remote", "time"}
    assert "s3cret" not in json.dumps(log.records, default=str)


async def test_a_handoff_switches_the_agent_and_the_transcript_holds_it(
    card: FifoSoundCard, server: FakeRealtimeServer, forecast: Any  # noqa: F811
) -> None:
    server.script_responses(
        ScriptedResponse.calling("transfer_to_weather"),
        ScriptedResponse.calling("get_weather", {"place": "Oslo"}),
        ScriptedResponse.saying("It is fourteen degrees and raining in Oslo."),
    )
    settings = make_settings(
        realtime={"url": server.url}, session={"idle_timeout_s": 20}, transcripts={"enabled": True},
        agent={"agents_file": str(REPO / "config/agents.toml"),
               "weather_url": f"http://127.0.0.1:{forecast.server_address[1]}"},
    )
    app = Appliance(settings, "sk-test", None)
    async with running(app) as log:
        await converse(app, log, card, lambda: "get_weather" in outputs(server), "the weather tool")
        await wait_until(lambda: any(e.get("role") == "assistant" for e in transcript_lines(settings.data_dir)), 30,
                         "the answer's transcript", log)
        app.controls.stop()
        await wait_until(lambda: bool(log.events("conversation_end")), 10, "the end", log)
    assert [(e["from"], e["to"]) for e in log.events("handoff")] == [("Assistant", "Weather")]
    # The session.update after the handoff carries the specialist's instructions and tools.
    assert "weather specialist" in server.instructions_sent[-1]
    assert "weather specialist" not in server.instructions_sent[0]
    assert "get_weather" in server.tools_offered[-1] and "set_timer" not in server.tools_offered[-1]
    assert outputs(server)["get_weather"].output.startswith("Oslo: now 14 °C, light rain")
    lines = transcript_lines(settings.data_dir)
    kinds = [(line["event"], line.get("role") or line.get("tool") or line.get("to") or line.get("reason"))
             for line in lines]
    assert kinds[0] == ("wake", None) and kinds[-1] == ("conversation_end", "api")
    assert ("transcript", "user") in kinds and ("handoff", "Weather") in kinds
    assert ("tool", "get_weather") in kinds and ("transcript", "assistant") in kinds
    said = [line["text"] for line in lines if line.get("role") == "assistant"]
    assert "It is fourteen degrees and raining in Oslo." in said
    assert "sk-test" not in json.dumps(lines)


def transcript_lines(data_dir: Path) -> list[dict[str, Any]]:
    files = sorted((data_dir / "transcripts").glob("*.jsonl"))
    if not files:
        return []
    return [json.loads(line) for line in files[-1].read_text().splitlines()]


async def answer_until_refused(card: FifoSoundCard, server: FakeRealtimeServer, answer: str,
                               **guardrail: str) -> EventLog:
    """One conversation whose first answer is ``answer`` (for a guardrail to stop) and whose second is the
    refusal; returns the log once the refusal has played."""
    server.script_responses(ScriptedResponse.saying(answer), ScriptedResponse.saying("Sorry, I can't help with that."))
    settings = make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 20}, agent=guardrail)
    app = Appliance(settings, "sk-test", None)
    async with running(app) as log:
        await converse(app, log, card, lambda: bool(log.events("guardrail")), "the guardrail")
        await wait_until(lambda: server.scripted_responses_left == 0 and log.states()[-1] == "listening", 30,
                         "the refusal", log)
        app.controls.stop()
    return log


async def test_a_guardrail_stops_the_answer_and_the_agent_refuses(
    card: FifoSoundCard, server: FakeRealtimeServer
) -> None:
    log = await answer_until_refused(card, server, "The alarm code is one two three four, and the door is open.",
                                     guardrail_phrases="alarm code, password")
    tripped = log.events("guardrail")
    assert tripped[0]["guardrail"] == "never_say" and tripped[0]["phrase"] == "alarm code"
    # The SDK told the model, and the refusal was asked for.
    told = [e for e in server.client_events if e.get("type") == "conversation.item.create"
            and "guardrail triggered" in json.dumps(e)]
    assert told, "the model was not told the guardrail tripped"
    assert "apologise in one short sentence" in server.instructions_sent[0]
    assert server.cancels, "the stopped answer was not cancelled"


async def test_an_mcp_server_that_dies_mid_conversation_still_gets_an_answer(
    card: FifoSoundCard, server: FakeRealtimeServer, tmp_path: Path
) -> None:
    servers = tmp_path / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {"house": {"command": sys.executable, "args": [HOUSEHOLD, "stdio"]}}}))
    server.script_responses(
        ScriptedResponse.calling("die"),
        ScriptedResponse.calling("pantry_count", {"item": "eggs"}),
    )
    settings = make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 20},
                             agent={"tool_timeout_s": 2}, mcp={"servers_file": str(servers)})
    app = Appliance(settings, "sk-test", None)
    async with running(app) as log:
        await converse(app, log, card, lambda: len(server.function_call_outputs) == 2, "two tool outputs")
        await wait_until(lambda: log.states()[-1] == "listening" and "speaking" in log.states(), 30,
                         "the answer", log)
        app.controls.stop()
    got = outputs(server)
    assert got["pantry_count"].output.startswith("TOOL ERROR"), got["pantry_count"].output
    assert all(o.response_requested for o in got.values())
    assert np.abs(card.speaker_audio()).max() > 1000


class Detection:
    model = "hey_jarvis"
    score = 0.97
    verifier_score = None


async def test_a_timer_due_during_a_conversation_rings_after_it_and_the_wake_word_dismisses_it(
    card: FifoSoundCard, server: FakeRealtimeServer
) -> None:
    settings = make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 30},
                             agent={"timer_ring_s": 30})
    app = Appliance(settings, "sk-test", None)
    async with running(app) as log:
        await converse(app, log, card, lambda: "speaking" in log.states(), "the answer")
        app.timers.add(1, "bread")
        await wait_until(lambda: app.timers.due() != [], 5, "the timer to fall due", log)
        await wait_until(lambda: log.states()[-1] == "listening", 20, "the answer to end", log)
        assert "ringing" not in log.states(), "it rang during the conversation"
        app.controls.stop()
        await wait_until(lambda: log.states()[-1] == "ringing", 10, "the ring after the conversation", log)
        app.controls.wake_word(Detection())  # the wake word, as the microphone pipeline reports it
        await wait_until(lambda: log.states()[-1] == "idle", 10, "idle after the dismissal", log)
    states = log.states()
    assert states.index("ringing") > states.index("listening")
    assert [(e["action"], e.get("by")) for e in log.events("timer")] == [
        ("set", None), ("rang", None), ("dismissed", "wakeword")]
    assert len(log.events("wake")) == 1, "the wake word dismissed the ring; it did not start a conversation"


class Classifier(BaseHTTPRequestHandler):
    """A stand-in Chat Completions endpoint: YES when the text mentions the alarm."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Classifier.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        text = body["messages"][-1]["content"]
        answer = "YES" if "alarm" in text.lower() else "NO"
        reply = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def classifier() -> Iterator[str]:
    Classifier.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Classifier)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


async def test_a_topic_classifier_guardrail_trips(
    card: FifoSoundCard, server: FakeRealtimeServer, classifier: str
) -> None:
    log = await answer_until_refused(card, server, "Sure. To switch off the alarm system, enter the code at the door.",
                                     guardrail_topics="home security, alarm codes", guardrail_url=classifier)
    assert log.events("guardrail")[0]["guardrail"] == "topics"
    asked = Classifier.requests
    assert asked and asked[0]["path"] == "/v1/chat/completions" and asked[0]["model"] == "gpt-4o-mini"
    assert asked[0]["auth"] == "Bearer sk-test-not-a-real-key"
    assert "home security; alarm codes" in asked[0]["messages"][0]["content"]
    # Asked at sentence ends, not on every word of the answer (13 words, 2 sentences).
    assert len(asked) <= 3
    told = [e for e in server.client_events if e.get("type") == "conversation.item.create"
            and "guardrail triggered: topics" in json.dumps(e)]
    assert told, "the model was not told the guardrail tripped"
