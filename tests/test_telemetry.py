from __future__ import annotations

import asyncio
import json
import time

from appliance.events import ConversationEnded, ErrorRaised, StateChanged, Wake
from appliance.settings import Settings
from appliance.telemetry import Telemetry, health_of
from appliance.web.server import WebServer


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = (await reader.read()).decode()
    writer.close()
    head, _, body = raw.partition("\r\n\r\n")
    return int(head.split()[1]), body


def health_server(telemetry: Telemetry) -> WebServer:
    settings = Settings(health={"address": "127.0.0.1:0"})
    return WebServer(settings, telemetry)


async def test_metrics_and_health_over_http() -> None:
    t = Telemetry()
    healthy = {"ok": True}
    t.bind(lambda: {"overruns": 2, "underruns": 5, "dropped_blocks": 0, "output_underflows": 3},
           lambda: (healthy["ok"], "ok" if healthy["ok"] else "audio streams are not open"))
    server = health_server(t)
    await server.start()
    try:
        # The metrics are fed only by the event stream.
        t.on_event(Wake(source="button"))
        t.on_event(ErrorRaised(kind="connect_failed", text="connect_failed: refused"))
        t.on_event(ConversationEnded(reason="idle_timeout", duration_s=3.0, connect_ms=200.0, sent_audio_ms=2000,
                                     dropped_blocks=0, wake_to_open_ms=1200.0))
        t.on_event(StateChanged(state="listening", previous="idle"))
        status, body = await http_get(server.port, "/metrics")
        assert status == 200
        assert 'appliance_wakes_total{source="button"} 1.0' in body
        assert 'appliance_errors_total{kind="connect_failed"} 1.0' in body
        assert 'appliance_conversations_total{reason="idle_timeout"} 1.0' in body
        assert 'appliance_state{appliance_state="listening"} 1.0' in body
        assert 'appliance_state{appliance_state="idle"} 0.0' in body
        assert "appliance_audio_underruns_total 5.0" in body
        assert "appliance_audio_output_underflows_total 3.0" in body
        assert 'appliance_session_connect_seconds_bucket{le="1.5"} 1.0' in body
        assert 'appliance_session_connect_seconds_bucket{le="1.0"} 0.0' in body
        status, body = await http_get(server.port, "/healthz")
        assert status == 200 and json.loads(body)["ok"] is True
        healthy["ok"] = False
        status, body = await http_get(server.port, "/healthz")
        assert status == 503 and "audio" in json.loads(body)["reason"]
        status, _ = await http_get(server.port, "/nope")
        assert status == 404
        # Without a device there is no page and no API on this listener.
        status, _ = await http_get(server.port, "/")
        assert status == 404
    finally:
        await server.close()


def test_health_goes_stale_when_the_loop_stops_ticking() -> None:
    assert health_of(True, time.monotonic(), 10)[0]
    ok, reason = health_of(True, time.monotonic() - 30, 10)
    assert not ok and "ticked" in reason
    assert not health_of(False, time.monotonic(), 10)[0]
