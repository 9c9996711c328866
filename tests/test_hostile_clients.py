"""Hostile clients against a running appliance on loopback (`appliance run`, the FIFO card, the fake
Realtime server): DNS-rebinding Host/Origin pairs, oversized and chunked bodies on every POST route,
slow headers and bodies, connection floods from one client and from many, malformed and oversized
WebSocket messages, wrong and missing tokens, repeated failed logins. For each: what the client
gets; and all along `/healthz` (polled from another address) answers 200, and afterwards the
appliance still wakes on the wake word. Two runs: loopback without a token, and with one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from appliance.web import admission, body, throttle
from appliance.web import server as web_server
from tests.audio_compare import FIXTURES, read_wav
from tests.e2e_support import ApplianceProcess
from tests.web_support import web_env, web_port

pytestmark = pytest.mark.e2e

TOKEN = "hostile-suite-token-0123456789abcdef"
MONITOR = "127.0.0.2"  # the orchestrator's probe: another client than the attackers
MB = 1 << 20


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(reply_audio=read_wav(FIXTURES / "reply_24k.wav", 24000).tobytes()) as srv:
        yield srv


async def exchange(port: int, request: bytes, source: str = "127.0.0.1", timeout: float = 10) -> tuple[int, str]:
    """One request on its own connection; the status and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, text = raw.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), text


def request(method: str, path: str, *headers: str, data: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *headers, "Connection: close"]
    if method == "POST":
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def upgrade(*headers: str) -> bytes:
    return ("\r\n".join(["GET /api/events HTTP/1.1", *headers, "Upgrade: websocket", "Connection: Upgrade",
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"])
            + "\r\n\r\n").encode()


class HealthWatch:
    """Polls `/healthz` from `MONITOR` every 0.2 s for as long as it runs; every answer is kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[int | str] = []
        self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            try:
                status, _ = await exchange(self.port, request("GET", "/healthz", "Host: 127.0.0.1"), MONITOR, 3)
                self.answers.append(status)
            except (OSError, TimeoutError, IndexError, ValueError) as exc:
                self.answers.append(type(exc).__name__)
            await asyncio.sleep(0.2)

    async def assert_all_ok(self, what: str) -> None:
        """Every answer since the last check was 200 (and there is at least one, after the attack)."""
        deadline = time.monotonic() + 5
        while not self.answers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        bad = [a for a in self.answers if a != 200]
        assert self.answers and not bad, f"/healthz during {what}: {self.answers}"
        self.answers.clear()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def post_huge(port: int, path: str, framing: str, source: str = "127.0.3.3") -> int:
    """150 MB to `path`, announced by Content-Length or chunked; the status, read while sending."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    status_line = asyncio.create_task(reader.readline())
    frame = "Content-Length: 157286400" if framing == "length" else "Transfer-Encoding: chunked"
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{frame}\r\n\r\n".encode())
    chunk = b"x" * MB if framing == "length" else f"{MB:x}\r\n".encode() + b"x" * MB + b"\r\n"
    with contextlib.suppress(ConnectionError):
        for _ in range(150):
            if status_line.done():
                break
            writer.write(chunk)
            await writer.drain()
    try:
        return int((await asyncio.wait_for(status_line, 10)).split()[1])
    finally:
        writer.close()


async def trickle_headers(port: int, source: str) -> float:
    """Header lines every 0.5 s, never ending the head: how long until the server closes it."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    with contextlib.suppress(ConnectionError):
        for i in range(60):
            await asyncio.sleep(0.5)
            writer.write(f"X-Slow-{i}: x\r\n".encode())
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 0.01) == b"":
                    break
    writer.close()
    return time.monotonic() - started


async def trickle_body(port: int, source: str) -> int:
    """A login whose 100-byte body never finishes: the status it ends with."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
    try:
        return int((await asyncio.wait_for(reader.readline(), body.BODY_TIMEOUT_S + 10)).split()[1])
    finally:
        writer.close()


async def one_client_flood(port: int, count: int) -> list[bytes]:
    """`count` keep-alive connections from one address, each making one request and held open."""
    held = []
    answers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /api/auth HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        held.append(writer)
        try:
            answers.append((await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).strip())
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            answers.append(b"closed")
    await asyncio.sleep(1)  # held, while /healthz is polled
    for writer in held:
        writer.close()
    for writer in held:
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    await asyncio.sleep(0.5)  # the server sees them go
    return answers


async def wakes(app: ApplianceProcess, card: FifoSoundCard) -> None:
    before = len(app.events("wake"))
    card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
    await app.wait_for(lambda: len(app.events("wake")) > before, 30, "a wake after the attacks")
    await app.wait_for(lambda: app.states()[-1:] == ["idle"] and len(app.events("conversation_end")) > 0, 40,
                       "the conversation to end")


async def test_hostile_clients_on_loopback_without_a_token(card: FifoSoundCard, server: FakeRealtimeServer) -> None:
    app = await ApplianceProcess(web_env(card.env, server.url)).start()
    try:
        await app.wait_ready()
        port = await web_port(app)
        watch = HealthWatch(port)
        # Slow attacks run in the background while the rest go on.
        slow_head = asyncio.create_task(trickle_headers(port, "127.0.3.2"))
        slow_body = asyncio.create_task(trickle_body(port, "127.0.3.1"))

        # DNS rebinding: an attacker's name resolving to 127.0.0.1, Host and Origin both the attacker's.
        for name in ("127.evil.example", "127.0.0.1.rebind.attacker.test", "attacker.example", "localhost.evil"):
            host, origin = f"Host: {name}:{port}", f"Origin: http://{name}:{port}"
            assert (await exchange(port, request("GET", "/api/auth", host, origin)))[0] == 401, name
            status, text = await exchange(port, upgrade(host, origin))
            assert status == 401 and "hello" not in text, name
            assert (await exchange(port, request("POST", "/api/login", host, origin, data=b'{"token":"x"}')))[0] == 403
            assert (await exchange(port, request("POST", "/api/client-secret", host, origin)))[0] == 401
        # Another site's page, on a loopback Host: refused by its Origin.
        evil = (f"Host: 127.0.0.1:{port}", "Origin: http://evil.example")
        assert (await exchange(port, upgrade(*evil)))[0] == 401
        assert (await exchange(port, request("GET", "/api/auth", f"Host: 127.0.0.1:{port}")))[0] == 204  # control
        await watch.assert_all_ok("rebinding attempts")

        # 150 MB bodies on each POST route, by length and chunked: 413 at once, memory unmoved.
        before = peak_rss_mb(app.proc.pid)  # type: ignore[union-attr]
        for path in ("/api/login", "/api/client-secret"):
            for framing in ("length", "chunked"):
                assert await post_huge(port, path, framing) == 413, (path, framing)
        grown = peak_rss_mb(app.proc.pid) - before  # type: ignore[union-attr]
        assert grown < 20, f"peak RSS grew {grown:.0f} MB"
        await watch.assert_all_ok("oversized bodies")

        # One client holding 80 keep-alive connections: its first 16 are served, the rest refused.
        answers = await one_client_flood(port, 80)
        served = [a for a in answers if b" 204 " in a]
        assert len(served) == admission.PER_CLIENT_CONNECTIONS, answers
        assert all(b" 503 " in a or a == b"closed" for a in answers[admission.PER_CLIENT_CONNECTIONS:]), answers
        await watch.assert_all_ok("a one-client connection flood")

        # Malformed and oversized WebSocket messages: an error ack each, or a close for an over-size frame.
        async with connect(f"ws://127.0.0.1:{port}/api/events", max_size=None) as ws:
            assert json.loads(await ws.recv())["event"] == "hello"
            for junk in ("not json", "[1, 2]", '{"command": 5}', '{"command": "reboot"}', '{"command": "\\ud800"}',
                         '{"command": "volume", "value": "loud"}', '{"command": "volume", "value": 1e999}',
                         "[" * 1000, "x" * 2000, b"\x00\xff binary"):
                await ws.send(junk)
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                while reply.get("event") != "ack":
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply["ok"] is False and reply["error"], (junk, reply)
            await ws.send("x" * (web_server.WS_MAX_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await watch.assert_all_ok("malformed WebSocket messages")

        # Many clients filling the page/API with logins that never finish: the page gets 503, health 200.
        limit = web_server.MAX_API_REQUESTS + 16  # plus web.max_clients (default 16)
        holders = [asyncio.create_task(trickle_body(port, f"127.0.4.{i // admission.PER_CLIENT_CONNECTIONS + 1}"))
                   for i in range(limit)]
        await asyncio.sleep(1)
        status, text = await exchange(port, request("GET", "/api/auth", "Host: 127.0.0.1"), "127.0.5.1")
        assert status == 503 and "busy" in text
        await watch.assert_all_ok("page/API slots held by many clients")

        # The slow ones were cut off: the head by its deadline, the bodies by theirs.
        assert await slow_head < web_server.HEADER_TIMEOUT_S + 3
        assert await slow_body == 408
        held = await asyncio.gather(*holders)
        # Each holder was cut off after its deadline; one may have been refused at once (the slow body
        # above held a slot too).
        assert held.count(408) >= limit - 1 and set(held) <= {408, 503}, held
        await watch.assert_all_ok("slow headers and bodies")
        await watch.stop()

        await wakes(app, card)
        metrics = (await exchange(port, request("GET", "/metrics", "Host: 127.0.0.1"), MONITOR))[1]
        for reason in ("per_client", "api_busy", "body_too_large", "body_too_slow"):
            assert f'appliance_web_refused_total{{reason="{reason}"}}' in metrics, reason
    finally:
        rc = await app.stop()
    assert rc == 0, app.dump()
    # Refusals were counted, not logged one line each; nothing raised.
    warnings = [line for line in app.lines if line.get("level") in ("warning", "error")
                and line.get("logger", "").startswith(("appliance.web", "uvicorn"))]
    assert len(warnings) <= 2, "\n".join(json.dumps(w) for w in warnings[:3])
    assert "Traceback" not in "\n".join(app.stderr_lines)


async def test_hostile_clients_against_the_token(card: FifoSoundCard, server: FakeRealtimeServer) -> None:
    app = await ApplianceProcess(web_env(card.env, server.url, APPLIANCE_WEB__TOKEN=TOKEN)).start()
    try:
        await app.wait_ready()
        port = await web_port(app)
        watch = HealthWatch(port)
        host = "Host: 127.0.0.1"

        # Missing and wrong tokens, every way they can be presented.
        assert (await exchange(port, upgrade(host)))[0] == 401
        assert (await exchange(port, request("GET", "/api/auth", host)))[0] == 401
        assert (await exchange(port, request("POST", "/api/client-secret", host)))[0] == 401
        assert (await exchange(port, request("GET", "/api/auth", host, "Cookie: appliance_token=guess-1"),
                               "127.0.6.1"))[0] == 401
        assert (await exchange(port, upgrade(host, "Authorization: Bearer guess-2"), "127.0.6.2"))[0] == 401
        # Oversized bodies are refused before the token is even looked at.
        for path in ("/api/login", "/api/client-secret"):
            assert await post_huge(port, path, "chunked") == 413
        # Malformed logins: 400, never a 500.
        for junk in (b'{"token": "\\ud800"}', b"\xff\xfe", b"[]", b'{"token": null}', b"{"):
            assert (await exchange(port, request("POST", "/api/login", host, data=junk), "127.0.6.3"))[0] == 400, junk
        await watch.assert_all_ok("wrong tokens")

        # Repeated failed logins from one client: 401 a few times, then 429 with a wait, even for the right token.
        wrong = request("POST", "/api/login", host, data=json.dumps({"token": "y" * 32}).encode())
        statuses = [(await exchange(port, wrong))[0] for _ in range(throttle.FREE_FAILURES + 3)]
        assert statuses == [401] * throttle.FREE_FAILURES + [429] * 3, statuses
        right = request("POST", "/api/login", host, data=json.dumps({"token": TOKEN}).encode())
        assert (await exchange(port, right))[0] == 429
        # Another client is not locked out, and the right token there gets the cookie.
        assert (await exchange(port, right, "127.0.6.9"))[0] == 204
        async with connect(f"ws://127.0.0.1:{port}/api/events", local_addr=("127.0.6.9", 0),
                           additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            assert json.loads(await ws.recv())["event"] == "hello"
        await watch.assert_all_ok("repeated failed logins")
        await watch.stop()
        await wakes(app, card)
    finally:
        rc = await app.stop()
    assert rc == 0, app.dump()
    assert TOKEN not in app.all_output()
    assert "Traceback" not in "\n".join(app.stderr_lines)
