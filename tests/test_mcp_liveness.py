"""An MCP server that answers, even with an error, is alive; only silence or a broken transport is a
loss. `mcp-server-time` (2026-07-28 protocol: it has no `ping` and answers "Method not found") and
the household server told to refuse pings stay connected over many ping intervals, and a tool call
made after them, in a real conversation, is answered; a server that goes silent is lost."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from appliance.app import Appliance
from appliance.conversation import mcp as mcp_module
from appliance.conversation.mcp import parse_server
from appliance.events import McpServerChanged
from appliance.testing.fake_realtime import FakeRealtimeServer, FunctionCall, ScriptedResponse
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.inproc import make_settings, running, wait_until
from tests.test_agent_e2e import converse, outputs, server  # noqa: F401 (the fixture)
from tests.test_mcp_servers import HOUSEHOLD, manager

PING_S = 0.2
TIME_SERVER = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
REFUSING = {"command": sys.executable, "args": [HOUSEHOLD, "stdio"], "env": {"REFUSE_PING": "1"}}
TO_TOKYO = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}


@pytest.fixture(autouse=True)
def quick_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcp_module, "PING_INTERVAL_S", PING_S)


async def test_servers_that_answer_pings_with_errors_stay_connected(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "appliance.mcp")
    specs = [parse_server("time", TIME_SERVER, {}), parse_server("house", REFUSING, {})]
    async with manager(specs) as (m, seen):
        first = m.active()
        assert set(first) == {"time", "house"}
        await asyncio.sleep(10 * PING_S)
        assert m.active() == first  # the same connections, never dropped
        tokyo = await first["time"].call_tool("convert_time", TO_TOKYO)
        assert "Asia/Tokyo" in tokyo.content[0].text  # type: ignore[union-attr]
        eggs = await first["house"].call_tool("pantry_count", {"item": "eggs"})
        assert eggs.content[0].text == "6 eggs in the pantry"  # type: ignore[union-attr]
    changes = sorted((e.server, e.action) for e in seen if isinstance(e, McpServerChanged))
    assert changes == [("house", "connected"), ("time", "connected")]
    # The household server says on its stderr (logged as the appliance's) each ping it refused.
    refused = [r for r in caplog.records
               if getattr(r, "event", None) == "mcp_stderr" and r.getMessage().endswith("ping refused")]
    assert len(refused) >= 5, [r.getMessage() for r in caplog.records]


async def test_a_server_that_goes_silent_is_lost() -> None:
    spec = parse_server("house", {"command": sys.executable, "args": [HOUSEHOLD, "stdio"]}, {})
    async with manager([spec], connect_timeout_s=4) as (m, seen):
        result = await m.active()["house"].call_tool("pid", {})
        pid = int(result.content[0].text)  # type: ignore[union-attr]
        os.kill(pid, signal.SIGSTOP)  # alive as a process, but it answers nothing
        try:
            await wait_until(lambda: any(isinstance(e, McpServerChanged) and e.action == "lost" for e in seen),
                             15, "the silent server to be lost")
        finally:
            os.kill(pid, signal.SIGCONT)
    lost = next(e for e in seen if isinstance(e, McpServerChanged) and e.action == "lost")
    assert lost.error == "timed out"


@pytest.mark.e2e
async def test_a_tool_call_after_many_pings_is_answered_in_a_conversation(
    card: FifoSoundCard, server: FakeRealtimeServer, tmp_path: Path  # noqa: F811
) -> None:
    servers = tmp_path / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {"time": TIME_SERVER, "house": REFUSING}}))
    server.script_responses(ScriptedResponse(calls=(
        FunctionCall("convert_time", TO_TOKYO), FunctionCall("pantry_count", {"item": "eggs"}))))
    app = Appliance(make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 20},
                                  mcp={"servers_file": str(servers)}), "sk-test", None)
    async with running(app) as log:
        await wait_until(lambda: app.mcp is not None and set(app.mcp.active()) == {"time", "house"}, 20,
                         "both servers connected", log)
        await asyncio.sleep(10 * PING_S)  # many pings, each answered with an error
        await converse(app, log, card, lambda: len(server.function_call_outputs) == 2, "two tool outputs")
        app.controls.stop()
    got = outputs(server)
    assert "Asia/Tokyo" in got["convert_time"].output and "21:00" in got["convert_time"].output, got
    assert "6 eggs in the pantry" in got["pantry_count"].output, got
    assert [e["action"] for e in log.events("mcp")] == ["connected", "connected"], log.events("mcp")
