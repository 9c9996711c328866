"""The server misbehaves: garbage on the wire, a dropped connection, a refused handshake, an error
event. Each gives a clear log line and the appliance recovers to idle and serves the next wake."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.inproc import make_settings, press, running, wait_until

pytestmark = pytest.mark.e2e


def make_app(server: FakeRealtimeServer) -> Appliance:
    settings = make_settings(realtime={"url": server.url}, button={"pin": 17, "bounce_s": 0},
                             session={"idle_timeout_s": 30, "error_backoff_s": 0.3})
    return Appliance(settings, "sk", None)


async def garbage(server: FakeRealtimeServer) -> None:
    await server.send_raw("this is not json {")


async def drop(server: FakeRealtimeServer) -> None:
    await server.drop_connections(abrupt=True)


@pytest.mark.parametrize(("fault", "kind", "words"), [(garbage, "connection", "JSONDecodeError"),
                                                      (drop, "connection", "ConnectionClosed")])
async def test_broken_session_errors_then_recovers(
    card: FifoSoundCard, mock_pins: object, fault: Callable[[FakeRealtimeServer], Awaitable[None]], kind: str,
    words: str,
) -> None:
    async with FakeRealtimeServer() as server:
        app = make_app(server)
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            await press(button)
            await wait_until(lambda: "listening" in log.states(), 10, "session", log)
            await fault(server)
            await wait_until(lambda: bool(log.events("error")), 10, "the error", log)
            error = log.events("error")[0]
            assert error["kind"] == kind and words in error["message"], error
            await wait_until(lambda: log.states()[-1] == "idle", 10, "idle again", log)
            # And it still works.
            await press(button)
            await wait_until(lambda: log.states().count("listening") == 2, 10, "a second session", log)
    assert "error" in log.states()
    assert len(server.connections) == 2


async def test_refused_handshake_and_server_error_event(card: FifoSoundCard, mock_pins: object) -> None:
    async with FakeRealtimeServer() as server:
        server.reject_connections(401)
        app = make_app(server)
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            await press(button)
            await wait_until(lambda: bool(log.events("error")), 10, "the error", log)
            assert log.events("error")[0]["kind"] == "connect_failed"
            assert "401" in log.events("error")[0]["message"]
            await wait_until(lambda: log.states()[-1] == "idle", 10, "idle again", log)
            server.reject_connections(None)
            await press(button)
            await wait_until(lambda: "listening" in log.states(), 10, "a session", log)
            # An error event from the server is reported and the session carries on.
            await server.send_error(message="rate limit reached", code="rate_limit_exceeded")
            await wait_until(lambda: bool(log.events("session_error")), 10, "the error event", log)
            await asyncio.sleep(0.3)
            assert log.states()[-1] == "listening"
    assert "rate limit reached" in log.events("session_error")[0]["message"]


