"""The HTTP server in-process: its bounds (slow headers, long lines, connection cap), the event
fan-out to a stalled client, the token and origin rules. The appliance object is real; it is
not running, so events are published on its stream directly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from appliance.app import Appliance
from appliance.events import StateChanged, ToolCalled
from appliance.settings import Settings
from appliance.state import State
from appliance.web import admission
from appliance.web import server as web_server
from appliance.web.server import WebServer

TOKEN = "web-token-for-tests-0123456789"


def settings(**web: Any) -> Settings:
    return Settings(
        openai_api_key="sk-test-not-a-real-key",
        data_dir=tempfile.mkdtemp(prefix="appliance-data-"),
        health={"address": web.pop("address", "127.0.0.1:0")},
        web=web,
    )


@contextlib.asynccontextmanager
async def running(s: Settings) -> AsyncIterator[tuple[Appliance, WebServer]]:
    appliance = Appliance(s, "sk-test-not-a-real-key", None)
    appliance.events.bind_loop(asyncio.get_running_loop())
    server = WebServer(s, appliance.telemetry, appliance)
    await server.start()
    try:
        yield appliance, server
    finally:
        await server.close()


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.decode(errors="replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def get(path: str, *extra: str) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *extra]) + "\r\n\r\n").encode()


def upgrade(path: str, *headers: str) -> bytes:
    """A WebSocket handshake with exactly these Host/Origin/other headers."""
    lines = [f"GET {path} HTTP/1.1", *headers, "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_client_trickling_header_lines_is_cut_off() -> None:
    async with running(settings()) as (_, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # One more header line every half second, for longer than the head deadline allows.
        lines_sent = 0
        closed = False
        for lines_sent in range(1, 4 * int(web_server.HEADER_TIMEOUT_S)):
            await asyncio.sleep(0.5)
            try:
                writer.write(f"X-Slow-{lines_sent}: x\r\n".encode())
                await writer.drain()
            except ConnectionError:
                closed = True
                break
            if reader.at_eof() or (await _closed(reader)):
                closed = True
                break
        writer.close()
        assert closed, "the server kept a connection whose headers never ended"
        assert lines_sent < 4 * int(web_server.HEADER_TIMEOUT_S) - 1
        # And it still answers others.
        status, _, _ = await http(server.port, get("/healthz"))
        assert status in (200, 503)


async def _closed(reader: asyncio.StreamReader) -> bool:
    with contextlib.suppress(TimeoutError):
        data = await asyncio.wait_for(reader.read(1), 0.01)
        return data == b""
    return False


async def test_a_huge_header_line_is_refused_and_the_server_goes_on() -> None:
    async with running(settings()) as (_, server):
        try:
            status, _, _ = await http(server.port, get("/healthz", "X-Big: " + "a" * 200_000))
        except ConnectionResetError:  # refused and closed while the line was still being sent
            status = 400
        assert status in (400, 431)
        status, _, body = await http(server.port, get("/metrics"))
        assert status == 200 and "appliance_web_clients" in body


def healthy(appliance: Appliance) -> None:
    """Not running, the appliance reports "starting" (503): make /healthz's own verdict 200, so a 503
    can only be the listener refusing."""
    appliance.telemetry.bind(dict, lambda: (True, "ok"))


async def http_from(source: str, port: int, request: bytes) -> tuple[int, dict[str, str], str]:
    """`http`, from another loopback address (another client, as far as the server can tell)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), {}, body


def refused(appliance: Appliance, reason: str) -> float:
    return appliance.telemetry.web_refused.labels(reason)._value.get()


async def keep_alive(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A connection that made one page request and is held open (keep-alive); returns its first answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /api/auth HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    try:
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except (asyncio.IncompleteReadError, ConnectionError):
        first = b""
    return reader, writer, first


async def test_one_client_holding_many_connections_cannot_fail_healthz(caplog: pytest.LogCaptureFixture) -> None:
    async with running(settings()) as (appliance, server):
        healthy(appliance)
        held = [await keep_alive(server.port) for _ in range(79)]
        try:
            for _ in range(5):  # another client, while those are held
                status, _, body = await http_from("127.0.0.2", server.port, get("/healthz"))
                assert status == 200, body
                assert (await http_from("127.0.0.2", server.port, get("/metrics")))[0] == 200
            answers = [first.split(b"\r\n")[0] for _, _, first in held]
            per_client = admission.PER_CLIENT_CONNECTIONS
            assert all(b" 204 " in a for a in answers[:per_client]), answers[:per_client]
            # Past its share the same client is refused as it connects (or finds the connection closed).
            assert all(b" 204 " not in a for a in answers[per_client:]), answers[per_client:]
            assert refused(appliance, "per_client") == 79 - per_client
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(warnings) <= 1, [r.getMessage() for r in warnings]  # a summary, not one line each
        finally:
            for _, writer, _ in held:
                writer.close()
        # Once they go, the client gets its share back.
        await asyncio.sleep(0.2)
        assert (await http(server.port, get("/api/auth")))[0] == 204


async def test_page_and_api_requests_past_their_cap_get_503_and_healthz_still_answers() -> None:
    async with running(settings()) as (appliance, server):
        healthy(appliance)
        limit = server.admission.api_limit
        # Logins whose bodies never finish hold a page/API request each, from several clients.
        holders = []
        for i in range(limit):
            source = f"127.0.1.{i // admission.PER_CLIENT_CONNECTIONS + 1}"
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))
            writer.write(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
            holders.append((reader, writer))
        try:
            await asyncio.sleep(0.3)
            assert server.admission.api_in_use == limit
            status, _, body = await http_from("127.0.2.1", server.port, get("/api/auth"))
            assert status == 503 and "busy" in body
            assert (await http_from("127.0.2.1", server.port, get("/healthz")))[0] == 200
            assert (await http_from("127.0.2.1", server.port, get("/metrics")))[0] == 200
            assert refused(appliance, "api_busy") >= 1
        finally:
            for _, writer in holders:
                writer.close()


async def test_idle_connections_that_send_nothing_are_closed_by_the_head_deadline() -> None:
    async with running(settings()) as (_, server):
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(4)]
        try:
            for reader, _ in idle:
                assert await asyncio.wait_for(reader.read(), web_server.HEADER_TIMEOUT_S * 4) == b""
        finally:
            for _, writer in idle:
                writer.close()


async def test_a_stalled_client_is_dropped_and_the_others_get_every_event() -> None:
    async with running(settings(client_queue=32)) as (appliance, server):
        url = f"ws://127.0.0.1:{server.port}/api/events"
        async with connect(url, max_size=None) as live:
            hello = json.loads(await live.recv())
            assert hello["event"] == "hello"
            loop = asyncio.get_running_loop()
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.setblocking(False)
            await loop.sock_connect(stalled, ("127.0.0.1", server.port))
            await loop.sock_sendall(stalled, (
                b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ))
            assert b" 101 " in (await loop.sock_recv(stalled, 200)).split(b"\r\n")[0]
            # From here on the stalled client reads nothing.
            received: list[dict[str, Any]] = []

            async def read_all() -> None:
                while len(received) < total:
                    message = json.loads(await live.recv())
                    if message["event"] == "tool":
                        received.append(message)

            total = 1500
            reader = asyncio.create_task(read_all())
            result = "x" * 8192
            for i in range(total):
                appliance.events.publish(ToolCalled(tool=f"t{i}", result=result))
                if i % 4 == 3:
                    await asyncio.sleep(0.002)
            await asyncio.wait_for(reader, 30)
            stalled.close()
        assert [m["tool"] for m in received] == [f"t{i}" for i in range(total)]
        metrics = appliance.telemetry.metrics_text().decode()
        assert "appliance_web_clients_dropped_total 1.0" in metrics


async def test_hello_and_commands_in_process() -> None:
    async with running(settings()) as (appliance, server), connect(f"ws://127.0.0.1:{server.port}/api/events") as ws:
        hello = json.loads(await ws.recv())
        assert hello["state"] == "idle" and hello["muted"] is False and hello["wake_models"] == ["hey_jarvis"]
        await ws.send(json.dumps({"command": "volume", "value": 35}))
        replies = [json.loads(await ws.recv()) for _ in range(2)]
        assert {"event": "ack", "command": "volume", "ok": True, "volume": 35} in replies
        assert appliance.volume == 35
        await ws.send("not json")
        assert json.loads(await ws.recv()) == {"event": "ack", "command": None, "ok": False, "error": "not JSON"}
        await ws.send(json.dumps({"command": "volume", "value": 101}))
        assert json.loads(await ws.recv())["ok"] is False
        await ws.send(json.dumps({"command": "stop"}))
        assert json.loads(await ws.recv())["ok"] is False
        appliance.events.publish(StateChanged(state="waking", previous="idle", source="api"))
        assert json.loads(await ws.recv()) == {"event": "state", "state": "waking", "previous": "idle",
                                               "source": "api"}


async def test_token_cookie_and_origin() -> None:
    async with running(settings(address="0.0.0.0:0", token=TOKEN)) as (_, server):
        url = f"ws://127.0.0.1:{server.port}/api/events"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as wrong:
            async with connect(url, additional_headers={"Authorization": "Bearer nope"}):
                pass
        assert wrong.value.response.status_code == 401
        async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            assert json.loads(await ws.recv())["event"] == "hello"
        # Monitoring stays open; the page itself holds nothing secret.
        assert (await http(server.port, get("/healthz")))[0] in (200, 503)
        assert (await http(server.port, get("/")))[0] == 200
        assert (await http(server.port, get("/api/auth")))[0] == 401
        # The page's sign-in: the token for an HttpOnly, SameSite=Strict cookie.
        body = json.dumps({"token": TOKEN})
        login = (f"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode()
        status, headers, _ = await http(server.port, login)
        assert status == 204
        cookie = headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        pair = cookie.split(";")[0]
        assert (await http(server.port, get("/api/auth", f"Cookie: {pair}")))[0] == 204
        # A page from another origin cannot use the cookie's authority.
        origin = "Origin: http://evil.example"
        assert (await http(server.port, get("/api/auth", f"Cookie: {pair}", origin)))[0] == 401
        with pytest.raises(InvalidStatus):
            async with connect(url, additional_headers={"Cookie": pair, "Origin": "http://evil.example"}):
                pass


LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.1:9090", "127.8.9.10", "localhost", "LOCALHOST:80", "[::1]", "[::1]:9090"]
# Names an attacker's DNS can point at 127.0.0.1 (rebinding), and hosts that parse as nothing.
REBINDING_HOSTS = ["attacker.example:80", "127.evil.example", "127.0.0.1.rebind.attacker.test", "localhost.evil",
                   "127.1", "[::1", "", "::1"]


async def test_without_a_token_only_loopback_host_names_are_served() -> None:
    async with running(settings()) as (_, server):
        for host in LOOPBACK_HOSTS:
            request = get("/api/auth").replace(b"Host: 127.0.0.1", f"Host: {host}".encode())
            assert (await http(server.port, request))[0] == 204, host
        for host in REBINDING_HOSTS:
            request = get("/api/auth").replace(b"Host: 127.0.0.1", f"Host: {host}".encode())
            assert (await http(server.port, request))[0] in (400, 401), host


async def test_a_rebinding_page_gets_no_websocket_and_no_hello() -> None:
    async with running(settings()) as (appliance, server):
        for name in ("127.evil.example", "127.0.0.1.rebind.attacker.test"):
            host = f"{name}:{server.port}"
            status, _, body = await http(server.port, upgrade("/api/events", f"Host: {host}", f"Origin: http://{host}"))
            assert status == 401 and "hello" not in body, (name, body)
        # The same handshake naming loopback is upgraded (so the refusal above is the Host rule).
        host = f"127.0.0.1:{server.port}"
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upgrade("/api/events", f"Host: {host}", f"Origin: http://{host}"))
        assert (await asyncio.wait_for(reader.readline(), 5)).split()[1] == b"101"
        writer.close()
        assert appliance.state.state is State.IDLE


def test_loopback_is_an_ip_literal_or_localhost() -> None:
    from appliance.settings import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.255.0.9", "::1", "localhost", "::ffff:127.0.0.1"))
    assert not any(is_loopback(h) for h in ("127.evil.example", "127.0.0.1.nip.io", "localhost.", "127.1",
                                            "10.0.0.1", "::", "0.0.0.0", ""))


def test_a_non_loopback_address_without_a_token_is_refused() -> None:
    with pytest.raises(ValueError, match="APPLIANCE_WEB__TOKEN"):
        settings(address="0.0.0.0:9090")
    assert settings(address="0.0.0.0:9090", enabled=False).web.enabled is False


async def test_the_example_led_ring_follows_the_state_through_the_api() -> None:
    import sys

    from tests.e2e_support import REPO

    async with running(settings(address="0.0.0.0:0", token=TOKEN)) as (appliance, server):
        env = {"APPLIANCE_WEB__TOKEN": TOKEN, "PATH": "/usr/bin:/bin"}
        ring = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "examples" / "led_ring.py"), "--url", f"ws://127.0.0.1:{server.port}/api/events",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        assert ring.stdout is not None
        try:
            assert (await asyncio.wait_for(ring.stdout.readline(), 30)).decode().strip() == "idle: #000000 off"
            appliance.state.to(State.WAKING, source="api")
            appliance.state.to(State.CONNECTING)
            appliance.state.to(State.LISTENING)
            lines = [(await asyncio.wait_for(ring.stdout.readline(), 10)).decode().strip() for _ in range(3)]
        finally:
            ring.terminate()
            await ring.wait()
    assert lines == ["waking: #ffffff spin", "connecting: #0000ff spin", "listening: #0000ff on"]


def test_client_secrets_go_to_the_realtime_urls_host() -> None:
    from appliance.web.client_secret import api_base_url, browser_realtime_url

    assert api_base_url("wss://api.openai.com/v1/realtime") == "https://api.openai.com/v1"
    assert api_base_url("ws://127.0.0.1:8765/v1/realtime?x=1") == "http://127.0.0.1:8765/v1"
    assert browser_realtime_url("wss://api.openai.com/v1/realtime", "gpt-realtime") == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime")


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def send_body(port: int, head: bytes, chunks: int, chunk: bytes, framing: str) -> int:
    """Send a POST with `chunks` × `chunk` of body (Content-Length or chunked); returns the status.
    The answer is read while the body is still going out: the server answers and closes early, and
    the reset its close causes would otherwise discard the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status_line = asyncio.create_task(reader.readline())
    total = chunks * len(chunk)
    if framing == "length":
        writer.write(head + f"Content-Length: {total}\r\n\r\n".encode())
    else:
        writer.write(head + b"Transfer-Encoding: chunked\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        for _ in range(chunks):
            if status_line.done():
                break
            writer.write(chunk if framing == "length" else f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
        if framing == "chunked":
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    try:
        line = await asyncio.wait_for(status_line, 10)
    finally:
        writer.close()
    return int(line.split()[1])


@pytest.mark.parametrize("path", ["/api/login", "/api/client-secret"])
async def test_an_oversized_body_is_refused_before_it_is_read(path: str) -> None:
    """150 MB at each POST route, with Content-Length and chunked: 413, and the server's peak RSS
    (read in its own process) barely moves. Before, /api/login read the whole body first."""
    import sys

    from tests.e2e_support import REPO

    child = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.web_child_server", TOKEN, cwd=REPO,
                                                 stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    try:
        port = int(await asyncio.wait_for(child.stdout.readline(), 30))
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
        assert (await http(port, get("/healthz")))[0] in (200, 503)
        before = peak_rss_kb(child.pid)
        for framing in ("length", "chunked"):
            status = await send_body(port, head, 150, b"x" * (1 << 20), framing)
            assert status == 413, framing
        grown_mb = (peak_rss_kb(child.pid) - before) / 1024
        assert grown_mb < 10, f"peak RSS grew {grown_mb:.0f} MB"
        assert (await http(port, get("/healthz")))[0] in (200, 503)
    finally:
        child.kill()
        await child.wait()


def login(body: bytes | str, *extra: str) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return (f"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n" + "".join(f"{e}\r\n" for e in extra)
            + "\r\n").encode() + data


async def test_malformed_logins_get_400(caplog: pytest.LogCaptureFixture) -> None:
    async with running(settings(address="0.0.0.0:0", token=TOKEN)) as (_, server):
        for body in [b'{"token": "\\ud800"}', b"not json", b"[1]", b'{"token": 5}', b'{"token": ""}', b"\xff\xfe",
                     b'{"nothing": 1}', b"[" * 1000]:
            status, _, _ = await http(server.port, login(body))
            assert status == 400, body
        assert (await http(server.port, login(json.dumps({"token": TOKEN}))))[0] == 204
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_failed_logins_slow_down_per_client() -> None:
    from appliance.web import throttle

    async with running(settings(address="0.0.0.0:0", token=TOKEN)) as (appliance, server):
        wrong = login(json.dumps({"token": "x" * 20}))
        statuses = [(await http(server.port, wrong))[0] for _ in range(throttle.FREE_FAILURES)]
        assert statuses == [401] * throttle.FREE_FAILURES
        # Now even the right token waits (it is not looked at), by the login and by a bearer header alike.
        status, headers, _ = await http(server.port, login(json.dumps({"token": TOKEN})))
        assert status == 429 and int(headers["retry-after"]) >= 1
        assert (await http(server.port, get("/api/auth", f"Authorization: Bearer {TOKEN}")))[0] == 429
        # Another client is not held up by this one's failures.
        assert (await http_from("127.0.0.2", server.port, login(json.dumps({"token": TOKEN}))))[0] == 204
        assert refused(appliance, "login_throttled") == 2
        assert refused(appliance, "wrong_token") == throttle.FREE_FAILURES
        # After the wait, the right token gets in and clears the record.
        await asyncio.sleep(throttle.BASE_DELAY_S + 0.1)
        assert (await http(server.port, login(json.dumps({"token": TOKEN}))))[0] == 204
        assert (await http(server.port, wrong))[0] == 401


async def test_wrong_bearer_tokens_count_as_failed_logins() -> None:
    from appliance.web import throttle

    async with running(settings(address="0.0.0.0:0", token=TOKEN)) as (_, server):
        for _ in range(throttle.FREE_FAILURES):
            assert (await http(server.port, get("/api/auth", "Authorization: Bearer guess-guess-guess")))[0] == 401
        bearer = f"Authorization: Bearer {TOKEN}"
        assert (await http(server.port, upgrade("/api/events", "Host: 127.0.0.1", bearer)))[0] == 429


def test_the_throttle_doubles_its_wait_and_forgets_the_oldest_clients() -> None:
    from appliance.web import throttle

    now = [0.0]
    t = throttle.FailureThrottle(clock=lambda: now[0])
    waits = []
    for _ in range(throttle.FREE_FAILURES + 8):
        t.failed("192.0.2.1")
        waits.append(t.retry_after("192.0.2.1"))
        now[0] += 100  # each attempt after the previous wait
    assert waits[:throttle.FREE_FAILURES - 1] == [0] * (throttle.FREE_FAILURES - 1)
    assert waits[throttle.FREE_FAILURES - 1:] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    # One IPv6 /64 is one client.
    t.failed("2001:db8::1")
    assert throttle.client_key("2001:db8::1") == throttle.client_key("2001:db8::ffff")
    for i in range(throttle.MAX_CLIENTS + 10):
        t.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(t._records) == throttle.MAX_CLIENTS


def test_a_short_token_is_refused_at_start_up(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from tests.e2e_support import REPO

    token_file = tmp_path / "token"
    token_file.write_text("fifteen-chars-x\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    short = (("APPLIANCE_WEB__TOKEN", "fifteen-chars-x"), ("APPLIANCE_WEB__TOKEN_FILE", str(token_file)))
    for variable, value in short:
        done = subprocess.run([sys.executable, "-m", "appliance", "config"], cwd=REPO, capture_output=True, text=True,
                              env={**base, variable: value, "OPENAI_API_KEY": "sk-test-not-a-real-key"}, timeout=60)
        assert done.returncode == 2, done
        assert variable in done.stderr and "16 characters" in done.stderr
        assert "fifteen-chars-x" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert settings(token="sixteen-chars-ok").web.token is not None


async def test_connections_give_their_admission_back_when_they_end() -> None:
    """More WebSockets and requests one after another than one client may hold at once: each one
    that ends frees its place (an upgraded connection included), so none is refused."""
    async with running(settings()) as (_, server):
        healthy_count = 0
        for _ in range(admission.PER_CLIENT_CONNECTIONS + 4):
            async with connect(f"ws://127.0.0.1:{server.port}/api/events") as ws:
                assert json.loads(await ws.recv())["event"] == "hello"
            status, _, _ = await http(server.port, get("/api/auth"))
            healthy_count += status == 204
        assert healthy_count == admission.PER_CLIENT_CONNECTIONS + 4
        for _ in range(50):
            if server.admission.connections == 0:
                break
            await asyncio.sleep(0.05)
        assert server.admission.connections == 0 and not server.admission.per_client
        assert server.admission.api_in_use == 0


def test_the_settings_apply_the_same_loopback_rule() -> None:
    """The web address and the Realtime URL decide "loopback" by the same helper as the Host check."""
    for name in ("127.evil.example", "127.0.0.1.nip.io", "localhost.evil"):
        with pytest.raises(ValueError, match="APPLIANCE_WEB__TOKEN"):
            settings(address=f"{name}:9090")
        with pytest.raises(ValueError, match="ws://"):
            Settings(openai_api_key="sk-test-not-a-real-key", realtime={"url": f"ws://{name}:8765/v1/realtime"})
    for name in ("127.0.0.1", "[::1]", "localhost"):
        assert settings(address=f"{name}:0").web.token is None
        Settings(openai_api_key="sk-test-not-a-real-key", realtime={"url": f"ws://{name}:8765/v1/realtime"})


def test_one_ipv6_prefix_is_one_client_for_the_connection_limit() -> None:
    from appliance.telemetry import Telemetry
    from appliance.web.throttle import client_key

    gate = admission.Admission(Telemetry(), api_limit=10)
    same_prefix = [client_key(f"2001:db8:0:1::{i:x}") for i in range(admission.PER_CLIENT_CONNECTIONS + 1)]
    assert [gate.connect(c) for c in same_prefix] == [True] * admission.PER_CLIENT_CONNECTIONS + [False]
    assert gate.connect(client_key("2001:db8:0:2::1"))  # the next /64 is another client
    assert gate.telemetry.web_refused.labels("per_client")._value.get() == 1
