"""A registered secret never reaches a device-API client or a transcript file, whatever carries it:
a tool's result or error text, what the agent says, an error's text. Both paths mask at the one
point their payloads are made (`ApplianceEvent.as_dict`, the transcript line's write)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from appliance.conversation.transcripts import TranscriptWriter
from appliance.events import ErrorRaised, EventBus, ToolCalled, TranscriptLine, Wake
from appliance.redaction import register_secret
from appliance.testing.fake_realtime import FakeRealtimeServer, FunctionCall, ScriptedResponse
from appliance.testing.fifo_soundcard import FifoSoundCard
from appliance.web.hub import EventHub
from tests.audio_compare import FIXTURES, read_wav
from tests.e2e_support import ApplianceProcess
from tests.test_mcp_servers import HOUSEHOLD
from tests.web_support import EventClient, web_env, web_port


def test_event_payloads_and_transcript_lines_mask_registered_secrets(tmp_path: Path) -> None:
    secret = "tok-events-0123456789abcdef"
    register_secret(secret)
    hub = EventHub(queue_size=20)
    client = hub.join()
    transcripts = TranscriptWriter(tmp_path, retention_days=30, retention_mb=50)
    bus = EventBus()
    bus.subscribe(hub.on_event)
    bus.subscribe(transcripts.on_event)
    for event in (
        Wake(source="api"),
        ToolCalled(tool="whose_house", result=f"the house of {secret}",
                   extra={"arguments": {"key": secret, "nested": [{"deep": f"x {secret} y"}]}, "agent": "a"}),
        ToolCalled(tool="boom", error=f"the server reported an error: refused {secret}"),
        TranscriptLine(role="assistant", text=f"The code is {secret}."),
        ErrorRaised(kind="session", text=f"failed with {secret}"),
    ):
        bus.publish(event)
    sent = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    (written,) = (tmp_path / "transcripts").glob("*.jsonl")
    lines = written.read_text(encoding="utf-8")
    assert len(sent) == 5 and len(lines.splitlines()) == 5
    for text in (*sent, json.dumps(list(hub.recent)), lines):
        assert secret not in text
    tool = json.loads(sent[1])
    assert tool["result"] == "the house of [redacted]"
    assert tool["arguments"] == {"key": "[redacted]", "nested": [{"deep": "x [redacted] y"}]}  # shape kept
    assert json.loads(sent[3])["text"] == "The code is [redacted]."
    assert json.loads(lines.splitlines()[-1])["text"] == "failed with [redacted]"


@pytest.mark.e2e
async def test_an_mcp_secret_in_tool_results_and_speech_reaches_no_client_and_no_transcript(
    card: FifoSoundCard, tmp_path: Path
) -> None:
    secret = "house-secret-0123456789-Muellers"
    servers = tmp_path / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {"house": {
        "command": sys.executable, "args": [HOUSEHOLD, "stdio"],
        "env": {"HOUSEHOLD_NAME": "${HOUSE_SECRET}", "BOOM_DETAIL": "${HOUSE_SECRET}"}}}}))
    async with FakeRealtimeServer(tool_name=None) as server:
        server.script_responses(
            ScriptedResponse(calls=(FunctionCall("whose_house"), FunctionCall("boom"))),
            ScriptedResponse.saying(f"This is the house of {secret}."),
        )
        data_dir = tmp_path / "data"
        env = web_env(card.env, server.url, HOUSE_SECRET=secret, APPLIANCE_MCP__SERVERS_FILE=str(servers),
                      APPLIANCE_TRANSCRIPTS__ENABLED="true", APPLIANCE_DATA_DIR=str(data_dir),
                      APPLIANCE_SESSION__IDLE_TIMEOUT_S="20")
        app = await ApplianceProcess(env).start()
        try:
            await app.wait_ready()
            await app.wait_for(lambda: any(e.get("action") == "connected" for e in app.events("mcp")), 30,
                               "the MCP server")
            client = await EventClient.open(await web_port(app))
            assert (await client.command({"command": "start"}))["ok"] is True
            await client.wait_for(lambda: "listening" in client.states(), 30, "listening")
            card.say(read_wav(FIXTURES / "what_time_only.wav", card.rate))
            await client.wait_for(lambda: any(m.get("role") == "assistant" for m in client.events("transcript")),
                                  60, "the spoken answer")
            assert (await client.command({"command": "stop"}))["ok"] is True
            await client.wait_for(lambda: bool(client.events("conversation_end")), 20, "the end")
            late = await EventClient.open(await web_port(app))  # its hello carries the recent events
            await late.wait_for(lambda: bool(late.events("hello")), 10, "hello")
            await client.close()
            await late.close()
        finally:
            rc = await app.stop()
    assert rc == 0, app.dump()
    assert len(server.function_call_outputs) == 2
    assert any(secret in o.output for o in server.function_call_outputs)  # the secret really was in the results
    tools = {m["tool"]: m for m in client.events("tool")}
    assert "the house of [redacted]" in tools["whose_house"]["result"], tools
    assert tools["boom"]["error"].startswith("the house server reported an error"), tools
    (transcript,) = (data_dir / "transcripts").glob("*.jsonl")
    written = transcript.read_text(encoding="utf-8")
    assert "the house of [redacted]" in written and "This is the house of [redacted]." in written
    for text in (json.dumps(client.messages), json.dumps(late.messages), written, app.all_output()):
        assert secret not in text
