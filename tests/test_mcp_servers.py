"""MCP servers from an `mcpServers` file: real servers (a stdio and a streamable-HTTP one built with
the MCP SDK, and the third-party `mcp-server-time` from PyPI), `${ENV}` values, a dead server left
out, reconnection after a server dies, and tool failures turned into error results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import RunContextWrapper
from agents.realtime import RealtimeAgent
from agents.tool_context import ToolContext

from appliance.conversation import mcp as mcp_module
from appliance.conversation.mcp import McpConfigError, McpManager, load_servers_file, parse_server
from appliance.conversation.tools.errors import is_error_result
from appliance.events import ApplianceEvent, EventBus, McpServerChanged

HOUSEHOLD = str(Path(__file__).with_name("mcp_household.py"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    """The household server over streamable HTTP, requiring a bearer token."""
    port = free_port()
    env = {**os.environ, "TOKEN": "s3cret", "TOOL_PREFIX": "remote_"}
    proc = subprocess.Popen([sys.executable, HOUSEHOLD, "http", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            if proc.poll() is not None:
                raise RuntimeError("the HTTP MCP server exited")
            asyncio.run(asyncio.sleep(0.05))
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(5)


def servers_file(tmp_path: Path, servers: dict[str, Any]) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


@contextlib.asynccontextmanager
async def manager(specs: Any, **kw: Any) -> AsyncIterator[tuple[McpManager, list[ApplianceEvent]]]:
    events = EventBus()
    seen: list[ApplianceEvent] = []
    events.subscribe(seen.append)
    m = McpManager(specs, events, **{"connect_timeout_s": 15, "tool_timeout_s": 3, **kw})
    await m.start(wait_s=20)
    try:
        yield m, seen
    finally:
        await m.close()


def test_env_substitution_file_variant_and_masking(tmp_path: Path) -> None:
    token_file = tmp_path / "ha_token"
    token_file.write_text("abc123\n")
    path = servers_file(tmp_path, {
        "ha": {"url": "http://ha.local:8123/api/mcp", "headers": {"Authorization": "Bearer ${HA_TOKEN}"}},
        "local": {"command": "tool", "args": ["--key", "${KEY}"], "env": {"KEY": "${KEY}"}},
        "broken": {"command": "tool", "env": {"X": "${NOT_SET}"}},
    })
    specs = {s.name: s for s in load_servers_file(path, {"HA_TOKEN_FILE": str(token_file), "KEY": "k9"})}
    assert specs["ha"].headers == {"Authorization": "Bearer abc123"}
    assert specs["local"].args == ("--key", "k9") and specs["local"].env == {"KEY": "k9"}
    assert specs["broken"].problem == "${NOT_SET} is not set (set NOT_SET or NOT_SET_FILE)"
    shown = json.dumps([s.masked() for s in specs.values()])
    assert "abc123" not in shown and "k9" not in shown and "********" in shown


def test_a_file_that_is_not_an_mcp_servers_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"servers": {}}')
    with pytest.raises(McpConfigError, match="mcpServers"):
        load_servers_file(path)


async def test_stdio_http_and_pypi_servers_connect_and_a_dead_one_is_left_out(http_server: str) -> None:
    env = {"TOKEN_VALUE": "s3cret"}
    specs = [
        parse_server("house", {"command": sys.executable, "args": [HOUSEHOLD, "stdio"],
                               "env": {"HOUSEHOLD_NAME": "the Müllers"}}, env),
        parse_server("remote", {"url": http_server, "headers": {"Authorization": "Bearer ${TOKEN_VALUE}"}}, env),
        parse_server("time", {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone",
                                                                   "Europe/Berlin"]}, env),
        parse_server("dead", {"command": "/nonexistent/mcp-server"}, env),
        parse_server("no-token", {"url": http_server}, env),
    ]
    async with manager(specs) as (m, seen):
        active = m.active()
        assert set(active) == {"house", "remote", "time"}
        assert {"pantry_count", "whose_house", "boom", "slow"} <= set(m.tools()["house"])
        assert "remote_pantry_count" in m.tools()["remote"]
        # mcp-server-time's get_current_time would clash with the built-in one: it is left out.
        assert m.tools()["time"] == ["convert_time"]
        house = await active["house"].call_tool("whose_house", {})
        assert house.content[0].text == "the house of the Müllers"  # type: ignore[union-attr]
        remote = await active["remote"].call_tool("remote_pantry_count", {"item": "eggs"})
        assert remote.content[0].text == "6 eggs in the pantry"  # type: ignore[union-attr]
        tokyo = await active["time"].call_tool(
            "convert_time", {"source_timezone": "Europe/Berlin", "time": "12:00", "target_timezone": "Asia/Tokyo"}
        )
        assert "Asia/Tokyo" in tokyo.content[0].text  # type: ignore[union-attr]
    failed = {e.server for e in seen if isinstance(e, McpServerChanged) and e.action == "failed"}
    assert failed == {"dead", "no-token"}
    assert "s3cret" not in json.dumps([e.as_dict() for e in seen])


async def test_tool_failures_and_timeouts_reach_the_model_as_error_results() -> None:
    spec = parse_server("house", {"command": sys.executable, "args": [HOUSEHOLD, "stdio"]}, {})
    async with manager([spec], tool_timeout_s=0.5) as (m, _):
        agent = RealtimeAgent(name="a", instructions="x", mcp_servers=list(m.active().values()))
        tools = {t.name: t for t in await agent.get_mcp_tools(RunContextWrapper(None))}

        async def call(name: str, args: dict[str, Any]) -> str:
            text = json.dumps(args)
            ctx = ToolContext(context=None, tool_name=name, tool_call_id="c", tool_arguments=text)
            return str(await tools[name].on_invoke_tool(ctx, text))  # type: ignore[union-attr]

        assert "2 flour" in await call("pantry_count", {"item": "flour"})
        # A tool that raises on the server: its error result (isError) is a failed call, with the server's text.
        boom = await call("boom", {})
        assert is_error_result(boom), boom
        assert "the house server reported an error: Error executing tool boom" in boom
        slow = await call("slow", {"seconds": 3})
        assert is_error_result(slow) and "timed out" in slow


async def test_a_server_that_dies_is_reconnected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcp_module, "PING_INTERVAL_S", 0.2)
    monkeypatch.setattr(mcp_module, "FIRST_RETRY_S", 0.2)
    spec = parse_server("house", {"command": sys.executable, "args": [HOUSEHOLD, "stdio"]}, {})
    async with manager([spec], tool_timeout_s=1) as (m, seen):
        first = m.active()["house"]
        with contextlib.suppress(Exception):
            await first.call_tool("die", {})

        def actions() -> list[str]:
            return [e.action for e in seen if isinstance(e, McpServerChanged)]

        for _ in range(300):
            if actions()[-2:] == ["lost", "connected"]:
                break
            await asyncio.sleep(0.05)
        assert actions() == ["connected", "lost", "connected"], actions()
        again = m.active()["house"]
        assert again is not first
        result = await again.call_tool("pantry_count", {"item": "milk"})
        assert result.content[0].text == "1 milk in the pantry"  # type: ignore[union-attr]
