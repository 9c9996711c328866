"""The agent layer's parts that need no Realtime server: the agents file, the guardrail's match,
the transcript writer and its retention, and a due timer ringing in the running appliance."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.conversation.agent import AgentSetup
from appliance.conversation.agents import AgentsFileError, load_agents
from appliance.conversation.guardrails import matched_phrase
from appliance.conversation.tools import BUILTIN_TOOL_NAMES, ConversationControl, ToolServices
from appliance.conversation.tools.memory import MemoryBook
from appliance.conversation.tools.timers import TimerBook
from appliance.conversation.transcripts import TranscriptWriter
from appliance.events import (
    ConversationEnded,
    EventBus,
    HandedOff,
    ToolCalled,
    TranscriptLine,
    Wake,
)
from appliance.store import Store
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.inproc import make_settings, press, running, wait_until

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_agents_file_builds_a_router_with_two_specialists(tmp_path: Path) -> None:
    settings = make_settings(agent={"agents_file": str(REPO / "config/agents.toml")})
    config = load_agents(settings, set(BUILTIN_TOOL_NAMES))
    store = Store(tmp_path)
    setup = AgentSetup(settings, config, ToolServices(settings, TimerBook(store, EventBus()), MemoryBook(store)))
    start = setup.build(ConversationControl(EventBus()))
    assert start.name == "Assistant"
    assert [a.name for a in start.handoffs] == ["Weather", "Travel"]  # type: ignore[union-attr]
    weather = start.handoffs[0]
    assert {t.name for t in weather.tools} == {"get_weather", "get_current_time", "end_conversation"}  # type: ignore
    assert weather.handoffs[0] is start  # type: ignore[union-attr]
    assert "weather specialist" in str(weather.instructions)  # type: ignore[union-attr]
    # The starting agent keeps the usual instructions and every tool.
    assert str(start.instructions).startswith(settings.agent.resolved_instructions())
    unserved = {"set_volume", "change_volume", "learn_my_voice"}  # no volume or enrolment service given here
    assert {t.name for t in start.tools} == set(BUILTIN_TOOL_NAMES) - unserved


@pytest.mark.parametrize(("text", "problem"), [
    ('[[agents]]\nname = "A"\ninstructions = "x"\ntools = ["fly"]', "unknown tools ['fly']"),
    ('[[agents]]\nname = "A"\ninstructions = "x"\nhandoffs = ["B"]', "unknown agent 'B'"),
    ('start = "B"\n[[agents]]\nname = "A"\ninstructions = "x"', "start = 'B'"),
    ('[[agents]]\nname = "A"\ninstructions = "x"\ncolour = "red"', "unknown keys ['colour']"),
])
def test_a_wrong_agents_file_is_refused_with_the_reason(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "agents.toml"
    path.write_text(text)
    with pytest.raises(AgentsFileError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_agents(make_settings(agent={"agents_file": str(path)}), set(BUILTIN_TOOL_NAMES))


def test_memory_and_rang_timers_reach_the_instructions_once(tmp_path: Path) -> None:
    store = Store(tmp_path)
    timers = TimerBook(store, EventBus())
    memory = MemoryBook(store)
    memory.remember("The bins go out on Tuesday")
    timers.finish([timers.add(1, "tea")])
    settings = make_settings()
    setup = AgentSetup(settings, load_agents(settings, set(BUILTIN_TOOL_NAMES)),
                       ToolServices(settings, timers, memory))
    first = str(setup.build(ConversationControl(EventBus())).instructions)
    assert "- The bins go out on Tuesday" in first and "these timers rang: tea" in first
    second = str(setup.build(ConversationControl(EventBus())).instructions)
    assert "bins" in second and "tea" not in second


def test_guardrail_phrases_match_whole_words_case_insensitively() -> None:
    phrases = ["credit card", "password"]
    assert matched_phrase("Your CREDIT  card number is…", phrases) == "credit card"
    assert matched_phrase("the passwords file", phrases) is None
    assert matched_phrase("Nothing to see here.", phrases) is None


def test_transcript_holds_the_conversation_and_retention_prunes(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, retention_days=1, retention_mb=1)
    writer.on_event(TranscriptLine(role="user", text="ignored: no conversation yet"))
    writer.on_event(Wake(source="button"))
    path = writer.current
    assert path is not None
    writer.on_event(TranscriptLine(role="user", text="What's the weather in Oslo?"))
    writer.on_event(HandedOff(from_agent="Assistant", to_agent="Weather"))
    writer.on_event(ToolCalled(tool="get_weather", result="Oslo: 3 °C", extra={"arguments": {"place": "Oslo"}}))
    writer.on_event(TranscriptLine(role="assistant", text="It is 3 degrees in Oslo.", agent="Weather"))
    writer.on_event(ConversationEnded(reason="goodbye", duration_s=4.0, connect_ms=10, sent_audio_ms=3000,
                                      dropped_blocks=0, wake_to_open_ms=50))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["wake", "transcript", "handoff", "tool", "transcript",
                                                 "conversation_end"]
    assert lines[1]["text"] == "What's the weather in Oslo?" and lines[2]["to"] == "Weather"
    assert lines[3]["arguments"] == {"place": "Oslo"} and lines[-1]["reason"] == "goodbye"
    assert all("t" in line for line in lines)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # Retention: an old file goes; then the oldest go until the rest fit the size limit.
    old = tmp_path / "transcripts" / "20000101-000000-000000.jsonl"
    old.write_text("{}\n")
    os.utime(old, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    assert writer.prune() == [old]
    big = tmp_path / "transcripts" / "zz-big.jsonl"
    big.write_bytes(b"x" * (1024 * 1024))
    assert writer.prune() == [path]
    assert not writer.prune()


@pytest.mark.e2e
async def test_a_due_timer_rings_until_the_button_dismisses_it(card: FifoSoundCard, mock_pins: object) -> None:
    settings = make_settings(button={"pin": 17, "bounce_s": 0}, realtime={"url": "ws://127.0.0.1:9"})
    # Set before the appliance starts (as after a restart): it is already due.
    TimerBook(Store(settings.data_dir), EventBus()).add(1, "eggs")
    time.sleep(1.1)
    app = Appliance(settings, "sk-test", detector=None)
    button = mock_pins.pin(17)  # type: ignore[attr-defined]
    async with running(app) as log:
        await wait_until(lambda: "ringing" in log.states(), 15, "the timer to ring", log)
        await wait_until(lambda: card.speaker_audio().size > card.rate, 10, "the ring to play", log)
        await press(button)
        await wait_until(lambda: log.states()[-1] == "idle", 10, "idle again", log)
    timers = [(e["action"], e["label"], e.get("by")) for e in log.events("timer")]
    assert timers == [("rang", "eggs", None), ("dismissed", "eggs", "button")]
    assert log.events("wake") == [], "the press dismissed the ring; it did not start a conversation"
    assert np.abs(card.speaker_audio()).max() > 1000
    assert TimerBook(Store(settings.data_dir), EventBus()).pending() == []


def test_memory_cli_lists_forgets_and_clears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from appliance.cli import main

    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path))
    book = MemoryBook(Store(tmp_path))
    first = book.remember("Anna is vegetarian")
    book.remember("The bins go out on Tuesday")
    assert main(["memory", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{first.id:4d}  Anna is vegetarian",
                                                    f"{first.id + 1:4d}  The bins go out on Tuesday"]
    assert main(["memory", "forget", str(first.id)]) == 0
    assert main(["memory", "forget", "999"]) == 1
    assert [f.text for f in book.facts()] == ["The bins go out on Tuesday"]
    assert main(["memory", "clear"]) == 0
    assert book.facts() == []


def test_config_shows_the_agent_setup_with_secrets_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from appliance.cli import main

    servers = tmp_path / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {
        "home": {"url": "http://ha.local:8123/api/mcp", "headers": {"Authorization": "Bearer ${HA_TOKEN}"}},
        "local": {"command": "tool", "env": {"API_KEY": "${KEY}"}},
    }}))
    monkeypatch.setenv("APPLIANCE_MCP__SERVERS_FILE", str(servers))
    monkeypatch.setenv("APPLIANCE_AGENT__AGENTS_FILE", str(REPO / "config/agents.toml"))
    monkeypatch.setenv("HA_TOKEN", "eyJhbGciOi-long-lived")
    monkeypatch.setenv("KEY", "k-123")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    setup = json.loads(out)["agent_setup"]
    assert [a["name"] for a in setup["agents"]] == ["Assistant", "Weather", "Travel"]
    assert setup["mcp_servers"]["home"] == {"transport": "streamable_http", "url": "http://ha.local:8123/api/mcp",
                                           "headers": {"Authorization": "********"}}
    assert setup["mcp_servers"]["local"]["env"] == {"API_KEY": "********"}
    assert "eyJhbGciOi" not in out and "k-123" not in out


async def test_a_classifier_that_cannot_be_reached_lets_the_answer_through() -> None:
    from agents import RunContextWrapper

    from appliance.conversation.guardrails import TopicClassifier, topic_guardrail

    classifier = TopicClassifier(["alarm codes"], "gpt-4o-mini", "http://127.0.0.1:9/v1", "sk-test", timeout_s=1)
    guardrail = topic_guardrail(classifier)
    result = await guardrail.guardrail_function(RunContextWrapper(None), None, "The code is 1234.")  # type: ignore
    assert result.tripwire_triggered is False
    # Asked at sentence ends or every 80 characters, once per length.
    assert classifier.due("Hello there") is False
    assert classifier.due("Hello there.") is True and classifier.due("Hello there.") is False
    assert classifier.due("Hello there. " + "x" * 90) is True
