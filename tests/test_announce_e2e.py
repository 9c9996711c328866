"""Announcements end to end, in-process: the real Agents SDK against the fake Realtime server, the FIFO
sound card, MockFactory pins, and (last) a real mosquitto with a client acting as Home Assistant."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
import soxr

from appliance.app import Appliance
from appliance.conversation.announcement import announcement_instructions
from appliance.indicators.earcons import load_earcon
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from appliance.web.commands import run_command
from tests.audio_compare import FIXTURES, best_match, read_wav
from tests.inproc import EventLog, make_settings, press, running, wait_until
from tests.mosquitto import Mosquitto, mosquitto_fixture  # noqa: F401 (the `mosquitto` fixture)
from tests.mqtt_support import listening

pytestmark = pytest.mark.e2e

BUTTON = 17
REPLY = read_wav(FIXTURES / "reply_24k.wav", 24000)
TEXT = "Dinner is ready, please come to the kitchen."


def api(app: Appliance, **message: Any) -> dict[str, Any]:
    return run_command(app, json.dumps(message))[0]


def announce_actions(log: EventLog) -> list[str]:
    return [e["action"] for e in log.events("announce")]


def heard_24k(card: FifoSoundCard) -> np.ndarray:
    return soxr.resample(card.speaker_audio(), card.rate, 24000)


async def test_an_announcement_when_idle_chimes_and_speaks_exactly_the_text(card: FifoSoundCard) -> None:
    async with FakeRealtimeServer(tool_name=None, reply_audio=REPLY.tobytes()) as server:
        app = Appliance(make_settings(realtime={"url": server.url}), "sk-test", detector=None)
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            reply = api(app, command="announce", text=f"  {TEXT}\n")
            assert reply["ok"] is True and reply["waiting"] == 0, reply
            await wait_until(lambda: "done" in announce_actions(log), 30, "the announcement", log)
            await wait_until(lambda: app.state.state.value == "idle", 5, "idle", log)
        assert announce_actions(log) == ["queued", "started", "done"]
        assert log.states() == ["announcing", "idle"]
        # The model was told to say exactly the text, asked for one response, and heard nothing.
        assert server.instructions_sent and server.instructions_sent[-1] == announcement_instructions(TEXT)
        assert server.instructions_sent[-1].endswith("\n" + TEXT)
        assert len(server.response_requests) == 1
        assert len(server.received_audio) == 0 and not server.user_turns
        assert server.session_updates[0]["audio"]["input"]["turn_detection"] is None
        assert len(server.connections) == 1
        await server.wait_for(lambda: server.active_connections == 0, 5)  # the session was closed
        # The speaker played the chime, then the model's audio.
        heard = heard_24k(card)
        chime_score, chime_at = best_match(heard, load_earcon("wake"))
        reply_score, reply_at = best_match(heard, REPLY)
        assert chime_score >= 0.95 and reply_score >= 0.95, (chime_score, reply_score)
        assert chime_at < reply_at
        assert not log.events("wake") and not log.events("conversation_end")  # not a conversation


async def test_an_announcement_during_a_conversation_waits_for_its_end(card: FifoSoundCard) -> None:
    async with FakeRealtimeServer(tool_name=None, reply_audio=REPLY.tobytes()) as server:
        settings = make_settings(realtime={"url": server.url}, session={"idle_timeout_s": 30})
        app = Appliance(settings, "sk-test", detector=None)
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            assert api(app, command="start")["ok"] is True
            await wait_until(lambda: "listening" in log.states(), 10, "the conversation", log)
            reply = api(app, command="announce", text=TEXT)
            assert reply["ok"] is True and reply["waiting"] == 0
            await asyncio.sleep(1.5)
            assert announce_actions(log) == ["queued"] and app.state.state.value == "listening"
            assert len(server.connections) == 1  # no second session while the first talks
            assert api(app, command="stop")["ok"] is True  # ends the conversation (not the queued one)
            await wait_until(lambda: "done" in announce_actions(log), 30, "the announcement", log)
        order = [r["event"] for r in log.records if r.get("event") in ("conversation_end", "announce")]
        assert order == ["announce", "conversation_end", "announce", "announce"], order
        assert log.states()[-3:] == ["idle", "announcing", "idle"]
        assert len(server.connections) == 2 and server.instructions_sent[-1] == announcement_instructions(TEXT)


async def test_a_button_press_dismisses_the_announcement_that_plays(card: FifoSoundCard, mock_pins: Any) -> None:
    long_reply = np.tile(REPLY, 6)  # several seconds, streamed in real time: it is still playing when pressed
    async with FakeRealtimeServer(tool_name=None, reply_audio=long_reply.tobytes(),
                                  reply_chunk_interval_s=None) as server:
        settings = make_settings(realtime={"url": server.url}, button={"pin": BUTTON, "bounce_s": 0})
        app = Appliance(settings, "sk-test", detector=None)
        button = mock_pins.pin(BUTTON)
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            assert api(app, command="announce", text=TEXT)["ok"] is True
            deltas = lambda: sum(e.get("type") == "response.output_audio.delta" for e in server.server_events)  # noqa: E731
            await wait_until(lambda: deltas() >= 5, 20, "the announcement playing", log)
            assert app.state.state.value == "announcing"
            await press(button)
            await wait_until(lambda: "dismissed" in announce_actions(log), 10, "dismissed", log)
            await wait_until(lambda: app.state.state.value == "idle", 5, "idle", log)
            await server.wait_for(lambda: server.active_connections == 0, 5)
            await asyncio.sleep(0.5)
        dismissed = log.events("announce")[-1]
        assert dismissed["action"] == "dismissed" and dismissed["by"] == "button"
        assert not log.events("wake")  # the press dismissed; it did not start a conversation
        total_chunks = len(long_reply) // 2400  # 100 ms deltas
        assert deltas() < total_chunks / 2, (deltas(), total_chunks)
        # What the speaker played stops soon after the press: far less than the whole answer.
        assert len(heard_24k(card)) < len(long_reply) / 2


async def test_home_assistant_makes_it_announce_over_mqtt(card: FifoSoundCard, mosquitto: Mosquitto) -> None:
    base = "appliances/flat/kitchen"
    async with FakeRealtimeServer(tool_name=None, reply_audio=REPLY.tobytes()) as server, \
            listening(mosquitto.port, "homeassistant/#", f"{base}/#") as ha:
        settings = make_settings(realtime={"url": server.url},
                                 mqtt={"url": mosquitto.url, "site": "flat", "device": "kitchen"})
        app = Appliance(settings, "sk-test", detector=None)
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            await ha.wait_for(lambda: ha.last("homeassistant/notify/kitchen/announce/config") is not None, 10,
                              "the notify entity")
            config = json.loads(ha.last("homeassistant/notify/kitchen/announce/config") or "{}")
            await ha.publish(config["command_topic"], TEXT)  # what notify.send_message sends
            await wait_until(lambda: "done" in announce_actions(log), 30, "the announcement", log)
            await ha.wait_for(lambda: ha.last(f"{base}/state") == "idle" and "announcing" in ha.payloads(
                f"{base}/state"), 5, "the state sensor following")
        ack = json.loads(ha.payloads(f"{base}/ack")[-1])
        assert ack["command"] == "announce" and ack["ok"] is True
        assert log.events("announce")[0]["source"] == "homeassistant"
        assert server.instructions_sent[-1] == announcement_instructions(TEXT)
        assert best_match(heard_24k(card), REPLY)[0] >= 0.95
