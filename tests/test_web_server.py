"""The HTTP server in-process: its bounds (slow headers, long lines, connection cap), the event
fan-out to a stalled client, the token and origin rules. The appliance object is real; it is
not running, so events are published on its stream directly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from appliance.app import Appliance
from appliance.events import StateChanged, ToolCalled
from appliance.settings import Settings
from appliance.state import State
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


async def test_connections_beyond_the_cap_get_503_until_idle_ones_time_out() -> None:
    async with running(settings()) as (_, server):
        cap = web_server.MAX_CONNECTIONS + server.settings.web.max_clients
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(cap)]
        try:
            status, _, _ = await http(server.port, get("/healthz"))
            assert status == 503
            # The idle connections never sent a request: the head deadline closes them.
            for reader, _ in idle:
                assert await asyncio.wait_for(reader.read(), web_server.HEADER_TIMEOUT_S * 4) == b""
            status, _, _ = await http(server.port, get("/metrics"))
            assert status == 200
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
