"""Secrets never reach a log line, at any level, whichever library writes it (or whichever MCP
server prints it on its stderr)."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.conversation.mcp import McpManager, parse_server
from appliance.conversation.mcp_stderr import BURST_LINES, ServerStderr
from appliance.events import EventBus
from appliance.logs import setup_logging
from appliance.redaction import redact, register_secret
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.e2e_support import ApplianceProcess, appliance_env
from tests.inproc import wait_until
from tests.test_mcp_servers import HOUSEHOLD

KEY = "sk-proj-Secret0123456789abcdefKEY"


@pytest.mark.e2e
@pytest.mark.parametrize("frames", [False, True])
async def test_debug_log_of_a_conversation_holds_no_key(card: FifoSoundCard, frames: bool) -> None:
    async with FakeRealtimeServer() as server:
        env = appliance_env(card.env, server.url, OPENAI_API_KEY=KEY, APPLIANCE_LOG__LEVEL="DEBUG",
                            APPLIANCE_LOG__WEBSOCKET_FRAMES=str(frames).lower())
        app = await ApplianceProcess(env).start()
        try:
            await app.wait_ready()
            card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
            await app.wait_for(lambda: "speaking" in app.states(), 30, "the answer")
            await app.wait_for(lambda: app.states()[-1] == "idle", 30, "back to idle")
        finally:
            rc = await app.stop()
    assert rc == 0, app.dump()
    assert server.connections[0]["authorization"] == f"Bearer {KEY}"  # the key was really sent
    output = app.all_output()
    assert any(line.get("level") == "debug" for line in app.lines), "DEBUG was not on"
    assert KEY not in output
    assert KEY[8:24] not in output  # nor a piece of it
    frame_lines = [line for line in app.lines if str(line.get("logger", "")).startswith("websockets")
                   and str(line.get("msg", "")).startswith(("< TEXT", "> TEXT"))]
    # Frames (transcripts) only with the explicit opt-in; the handshake's bearer is masked there.
    assert bool(frame_lines) == frames
    if frames:
        assert "Bearer [redacted]" in output


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.stdout, sys.excepthook, threading.excepthook)
    out = io.StringIO()
    sys.stdout = out
    try:
        setup_logging("json", "DEBUG")
    finally:
        sys.stdout = saved[2]
    yield out
    root.handlers[:], root.level = saved[0], saved[1]
    sys.excepthook, threading.excepthook = saved[3], saved[4]
    logging.captureWarnings(False)


def test_registered_and_shaped_secrets_are_masked_everywhere_in_a_record(captured: io.StringIO) -> None:
    web_token = "tok-web-0123456789abcdef"
    register_secret(web_token)
    log = logging.getLogger("some.library")
    log.debug("header %s", f"Authorization: Bearer {web_token}")
    log.info("ephemeral %r", {"client_secret": "ek_68af0123456789abcd"})
    log.warning("fields", extra={"headers": {"Authorization": "Bearer whatever-opaque-token"}, "note": web_token})
    try:
        raise RuntimeError(f"refused with key sk-abcdefghijklmnop and {web_token}")
    except RuntimeError:
        log.exception("failed")
    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 4
    for secret in (web_token, "ek_68af0123456789abcd", "whatever-opaque-token", "sk-abcdefghijklmnop"):
        assert secret not in text
    assert lines[2]["headers"] == {"Authorization": "Bearer [redacted]"}  # structure kept, value masked
    assert "RuntimeError" in lines[3]["exc"] and "[redacted]" in lines[3]["exc"]


def test_ordinary_text_is_left_alone() -> None:
    register_secret("short")  # too short to be a secret: never masked
    text = "state listening -> speaking, short answer, task-1234 ok"
    assert redact(text) == text


async def test_mcp_secrets_are_registered_and_a_servers_stderr_is_logged_redacted_and_limited(
    captured: io.StringIO, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    house_key = "hk-0123456789abcdef-house"
    ha_token = "ha-fedcba9876543210-token"
    token_file = tmp_path / "ha_token"
    token_file.write_text(ha_token + "\n")
    environ = {"HOUSE_KEY": house_key, "HA_TOKEN_FILE": str(token_file)}
    parse_server("ha", {"url": "https://ha.local/api/mcp", "headers": {"Authorization": "Bearer ${HA_TOKEN}",
                                                                        "X-Key": "${HA_TOKEN}"}}, environ)
    env = {"HOUSE_KEY": "${HOUSE_KEY}", "STDERR_AT_START": "starting, key ${HOUSE_KEY}"}
    spec = parse_server("house", {"command": sys.executable, "args": [HOUSEHOLD, "stdio"], "env": env}, environ)
    assert redact(f"key {ha_token} and {house_key}") == "key [redacted] and [redacted]"
    events = EventBus()
    m = McpManager([spec], events, connect_timeout_s=15, tool_timeout_s=5)
    await m.start(wait_s=20)
    try:
        await m.active()["house"].call_tool("grumble", {"text": f"oops: HOUSE_KEY={house_key}", "times": 200})
    finally:
        await m.close()

    def stderr_lines() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in captured.getvalue().splitlines()]
        return [line for line in lines if str(line.get("event")).startswith("mcp_stderr")]

    await wait_until(lambda: any(line["event"] == "mcp_stderr_dropped" for line in stderr_lines()), 10,
                     "the count of lines not logged")
    lines = stderr_lines()
    assert all(line["server"] == "house" for line in lines)
    logged = [line["msg"] for line in lines if line["event"] == "mcp_stderr"]
    assert logged[0] == "MCP server house: starting, key [redacted]"
    assert "MCP server house: oops: HOUSE_KEY=[redacted]" in logged
    assert len(logged) <= BURST_LINES + 5  # 201 lines written in a burst
    dropped = sum(line["lines"] for line in lines if line["event"] == "mcp_stderr_dropped")
    assert len(logged) + dropped == 201
    assert house_key not in captured.getvalue()
    assert house_key not in capfd.readouterr().err  # nothing went past the log to the appliance's stderr


def test_an_over_long_stderr_line_is_cut_at_a_space() -> None:
    text = b"x" * 10 + b" " + b"t" * 2000 + b"\n"
    stderr = ServerStderr("long")
    seen: list[str] = []
    stderr._emit = seen.append  # type: ignore[method-assign]
    stderr.errlog.write(text.decode() + "short line\n")
    stderr.close()
    stderr.join(5)
    assert seen == ["x" * 10 + " … (line cut)", "short line"]
