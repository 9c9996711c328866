"""The device API end to end: `appliance run` on the test sound card with the fake Realtime server,
and real WebSocket clients on `/api/events`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.e2e_support import REPO, ApplianceProcess, bundled_rule
from tests.web_support import EventClient, web_env, web_port

pytestmark = pytest.mark.e2e

TOKEN = "device-page-token-0123456789abcdef"
CONVERSATION = ["waking", "connecting", "listening", "speaking", "idle"]


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    reply = read_wav(FIXTURES / "reply_24k.wav", 24000)
    async with FakeRealtimeServer(reply_audio=reply.tobytes()) as srv:
        yield srv


def in_order(states: list[str], expected: list[str]) -> bool:
    """`expected` appears in `states` as a subsequence."""
    it = iter(states)
    return all(any(s == e for s in it) for e in expected)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


async def test_hello_then_state_events_for_the_wake_word_and_the_start_command(
    card: FifoSoundCard, server: FakeRealtimeServer
) -> None:
    app = await ApplianceProcess(web_env(card.env, server.url)).start()
    try:
        await app.wait_ready()
        client = await EventClient.open(await web_port(app))
        await client.wait_for(lambda: bool(client.events("hello")), 10, "hello")
        hello = client.messages[0]
        assert hello["event"] == "hello"
        assert hello["state"] == "idle" and hello["muted"] is False and 0 <= hello["volume"] <= 100
        assert hello["wake_models"] == ["hey_jarvis"] and hello["version"]

        # A conversation started by the wake word.
        card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
        await client.wait_for(lambda: bool(client.events("conversation_end")), 60, "the conversation to end")
        await client.wait_for(lambda: client.states()[-1] == "idle", 10, "idle")
        assert in_order(client.states(), CONVERSATION), client.states()
        wake = client.events("wake")[0]
        assert wake["source"] == "wakeword" and wake["model"] == "hey_jarvis"
        assert bundled_rule().hit(wake["score"], wake["verifier_score"]), wake  # by the verifier's rule
        # The API sends exactly the log's events: same names, same fields.
        for sent, line in zip(client.events("state"), app.events("state"), strict=False):
            assert sent == {k: line.get(k) for k in sent}, (sent, line)
            assert {"state", "previous", "reason", "source", "kind"} & set(line) <= set(sent), (sent, line)

        # A conversation started by the API, as a button press.
        first = len(client.states())
        ack = await client.command({"command": "start"})
        assert ack == {"event": "ack", "command": "start", "ok": True}
        await client.wait_for(lambda: "listening" in client.states()[first:], 30, "listening after start")
        assert client.events("state")[first]["state"] == "waking"
        assert client.events("state")[first]["source"] == "api"
        stop = await client.command({"command": "stop"})
        assert stop["ok"] is True
        await client.wait_for(lambda: client.states()[-1] == "idle", 20, "idle after stop")
        assert client.events("conversation_end")[-1]["reason"] == "api"
        assert (await client.command({"command": "stop"}))["ok"] is False
        await client.close()
    finally:
        rc = await app.stop()
    assert rc == 0, app.dump()
    assert len(server.connections) == 2


async def test_mute_ignores_the_wake_word_and_volume_changes_what_plays(
    card: FifoSoundCard, server: FakeRealtimeServer
) -> None:
    app = await ApplianceProcess(web_env(card.env, server.url)).start()
    try:
        await app.wait_ready()
        port = await web_port(app)
        client = await EventClient.open(port)
        watcher = await EventClient.open(port)  # a second client sees the changes too
        await client.wait_for(lambda: bool(client.events("hello")), 10, "hello")

        ack = await client.command({"command": "mute"})
        assert ack["ok"] is True and ack["muted"] is True
        await client.wait_for(lambda: client.states()[-1:] == ["muted"], 10, "muted")
        muted_event = {"event": "mute", "muted": True, "reason": "api"}
        await watcher.wait_for(lambda: watcher.events("mute") == [muted_event], 10, "mute")
        card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
        card.wait_said(30)
        await asyncio.sleep(1.5)
        assert client.events("wake") == [] and server.connections == []
        assert (await client.command({"command": "start"}))["ok"] is False

        assert (await client.command({"command": "unmute"}))["ok"] is True
        await client.wait_for(lambda: client.states()[-1:] == ["idle"], 10, "idle after unmute")

        # The same answer at full volume, then at 25 %: the speaker gets (0.25)² of the amplitude.
        loudness = []
        for volume in (100, 25):
            ack = await client.command({"command": "volume", "value": volume})
            assert ack["ok"] is True and ack["volume"] == volume
            before = card.speaker_audio().size
            ends = len(client.events("conversation_end"))
            card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
            await client.wait_for(lambda n=ends: len(client.events("conversation_end")) > n, 60, "an answer")
            await client.wait_for(lambda: client.states()[-1] == "idle", 10, "idle")
            loudness.append(rms(card.speaker_audio()[before:]))
        assert watcher.events("volume")[-1] == {"event": "volume", "volume": 25}
        await client.close()
        await watcher.close()
    finally:
        rc = await app.stop()
    assert rc == 0, app.dump()
    assert loudness[0] > 0
    assert loudness[1] / loudness[0] < 0.2, loudness


async def test_a_stalled_client_does_not_delay_the_appliance(card: FifoSoundCard, server: FakeRealtimeServer) -> None:
    app = await ApplianceProcess(web_env(card.env, server.url)).start()
    stalled: list[socket.socket] = []
    try:
        await app.wait_ready()
        port = await web_port(app)
        # Clients that complete the handshake and then never read a byte.
        loop = asyncio.get_running_loop()
        for _ in range(3):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, (
                b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ))
            stalled.append(sock)
        # And many clients that do read: each gets every event.
        clients = [await EventClient.open(port) for _ in range(8)]
        live = clients[0]
        card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
        await live.wait_for(lambda: bool(live.events("conversation_end")), 60, "the conversation to end")
        await live.wait_for(lambda: live.states()[-1] == "idle", 10, "idle")
        assert in_order(live.states(), CONVERSATION), live.states()
        assert live.states() == app.states()
        for other in clients[1:]:
            await other.wait_for(lambda c=other: c.states() == live.states(), 10, "the same states on every client")
        assert app.states()[-1] == "idle"
        for client in clients:
            await client.close()
    finally:
        # SIGTERM with the stalled clients still connected: the appliance still stops in time.
        rc = await app.stop()
        for sock in stalled:
            sock.close()
    assert rc == 0, app.dump()
    assert app.events("conversation_end")[0]["reason"] == "idle_timeout"


async def test_the_token_is_required_off_loopback_and_never_logged(
    card: FifoSoundCard, server: FakeRealtimeServer
) -> None:
    env = web_env(card.env, server.url, APPLIANCE_HEALTH__ADDRESS="0.0.0.0:0", APPLIANCE_WEB__TOKEN=TOKEN,
                  APPLIANCE_LOG__LEVEL="DEBUG", APPLIANCE_WEB__BROWSER_TALK="true")
    app = await ApplianceProcess(env).start()
    try:
        await app.wait_ready()
        port = await web_port(app)
        url = f"ws://127.0.0.1:{port}/api/events"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 401
        client = await EventClient.open(port, {"Authorization": f"Bearer {TOKEN}"})
        await client.wait_for(lambda: bool(client.events("hello")), 10, "hello")
        assert (await client.command({"command": "volume", "value": 40}))["ok"] is True
        await client.close()
        # The page's way: the token in its cookie.
        client = await EventClient.open(port, {"Cookie": f"appliance_token={TOKEN}"})
        await client.wait_for(lambda: bool(client.events("hello")), 10, "hello")
        await client.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).split()[1] in (b"200", b"503")  # open without the token
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/client-secret HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).split()[1] == b"401"
        writer.close()
        # With the token: a client secret minted by the fake server; neither it nor the key is logged.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST /api/client-secret HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        head, _, body = (await reader.read()).partition(b"\r\n\r\n")
        writer.close()
        assert head.split()[1] == b"200", head + body
        secret = json.loads(body)
        assert secret["value"].startswith("ek_") and secret["url"].startswith(server.url.split("?")[0])
        assert "sk-test-not-a-real-key" not in body.decode()
    finally:
        rc = await app.stop()
    assert rc == 0, app.dump()
    output = app.all_output()
    assert any(line.get("level") == "debug" for line in app.lines), "the run did not log at DEBUG"
    assert TOKEN not in output
    assert "sk-test-not-a-real-key" not in output
    assert secret["value"] not in output


async def test_no_token_off_loopback_refuses_to_start(card: FifoSoundCard) -> None:
    env = web_env(card.env, "ws://127.0.0.1:9/v1/realtime", APPLIANCE_HEALTH__ADDRESS="0.0.0.0:9090")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "run", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "APPLIANCE_WEB__TOKEN" in err.decode()
    assert "Traceback" not in err.decode() + out.decode()
    # With a token file instead, the same address is accepted by the settings.
    token_file = os.path.join(env["APPLIANCE_DATA_DIR"], "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    env["APPLIANCE_WEB__TOKEN_FILE"] = token_file
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "config", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["web"]["token"] == "********" and TOKEN not in out.decode()
