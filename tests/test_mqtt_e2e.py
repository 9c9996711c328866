"""End to end: `appliance run` as a subprocess on the FIFO sound card, with a real mosquitto and a client
acting as Home Assistant. The wake word is heard (and arbitrated, alone in its home), the state sensor
follows the conversation, Home Assistant mutes it, and a killed appliance goes `offline` by its will."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.e2e_support import ApplianceProcess, appliance_env
from tests.mosquitto import Mosquitto, mosquitto_fixture  # noqa: F401 (the `mosquitto` fixture)
from tests.mqtt_support import listening

pytestmark = pytest.mark.e2e

BASE = "appliances/flat/kitchen"


async def test_home_assistant_sees_and_drives_a_running_appliance(card: FifoSoundCard, mosquitto: Mosquitto) -> None:
    async with FakeRealtimeServer() as server, listening(mosquitto.port, "homeassistant/#", f"{BASE}/#") as ha:
        env = appliance_env(card.env, server.url, APPLIANCE_MQTT__URL=mosquitto.url, APPLIANCE_MQTT__SITE="flat",
                            APPLIANCE_MQTT__DEVICE="kitchen", APPLIANCE_MQTT__HOME="flat",
                            APPLIANCE_MQTT__KEEPALIVE_S="5")
        app = await ApplianceProcess(env).start()
        try:
            await app.wait_ready()
            await ha.wait_for(lambda: ha.last(f"{BASE}/availability") == "online", 20, "online")
            configs = [t for _, t, p, _ in ha.messages if t.startswith("homeassistant/") and p]
            assert len(set(configs)) == 7, configs
            # The wake word: arbitrated (alone in its home, it answers), the state sensor follows.
            card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
            await ha.wait_for(lambda: "listening" in ha.payloads(f"{BASE}/state"), 30, "listening")
            await ha.wait_for(lambda: ha.last(f"{BASE}/state") == "idle", 30, "back to idle")
            arbitrated = app.events("wake_arbitrated")
            assert [(a["answer"], a["reason"]) for a in arbitrated] == [(True, "alone")], app.dump()
            score = float(ha.last(f"{BASE}/wake_score") or 0)
            assert score == app.events("wake")[0]["score"] and score > 0  # (the verifier may have carried it)
            # Home Assistant mutes it; the switch and the state follow.
            await ha.publish(f"{BASE}/set/muted", "ON")
            await ha.wait_for(lambda: ha.last(f"{BASE}/muted") == "ON", 10, "the switch")
            await ha.wait_for(lambda: ha.last(f"{BASE}/state") == "muted", 10, "the state")
            assert app.events("mute")[-1]["muted"] is True
            # Talk is refused while muted (the page's check and ack).
            await ha.publish(f"{BASE}/set/talk", "PRESS")
            await ha.wait_for(lambda: any('"start"' in p for p in ha.payloads(f"{BASE}/ack")), 10, "talk ack")
            assert json.loads([p for p in ha.payloads(f"{BASE}/ack") if '"start"' in p][-1])["ok"] is False
            # It hangs (frozen, its connection still open): after 1.5 keep-alives the broker gives up on it
            # and publishes its will. Once it runs again it reconnects and is online again.
            assert app.proc is not None
            app.proc.send_signal(signal.SIGSTOP)
            frozen_at = time.monotonic()
            await ha.wait_for(lambda: ha.last(f"{BASE}/availability") == "offline", 20, "the last will")
            will_after = time.monotonic() - frozen_at
            app.proc.send_signal(signal.SIGCONT)
            assert 5 <= will_after <= 20, will_after  # 1.5 x 5 s, checked by the broker every few seconds
            await ha.wait_for(lambda: ha.last(f"{BASE}/availability") == "online", 20, "online again")
            await app.wait_for(lambda: bool(app.events("recovered")), 10, "the recovered line")
            mqtt_lines = [e for e in app.events("error") + app.events("recovered") if e.get("kind") == "mqtt"]
            assert [e["event"] for e in mqtt_lines] == ["error", "recovered"], app.dump()
            assert ha.last(f"{BASE}/muted") == "ON"
            # It vanishes: the socket closes, the will is published at once.
            app.proc.kill()
            await ha.wait_for(lambda: ha.payloads(f"{BASE}/availability")[-1:] == ["offline"], 10, "offline")
        finally:
            await app.stop()
        assert "sk-test-not-a-real-key" not in app.all_output()


async def test_a_clean_stop_says_offline_at_once(card: FifoSoundCard, mosquitto: Mosquitto) -> None:
    async with listening(mosquitto.port, f"{BASE}/availability") as ha:
        env = appliance_env(card.env, "ws://127.0.0.1:9/v1/realtime", APPLIANCE_MQTT__URL=mosquitto.url,
                            APPLIANCE_MQTT__SITE="flat", APPLIANCE_MQTT__DEVICE="kitchen")
        app = await ApplianceProcess(env).start()
        await ha.wait_for(lambda: ha.last(f"{BASE}/availability") == "online", 30, "online")
        rc = await app.stop()
        assert rc == 0, app.dump()
        await ha.wait_for(lambda: ha.last(f"{BASE}/availability") == "offline", 2, "offline on SIGTERM")


async def _two_devices_hear(card: FifoSoundCard, second: FifoSoundCard, broker_url: str, server_url: str,
                            gains: tuple[float, float], *, stop_broker: Mosquitto | None = None
                            ) -> tuple[ApplianceProcess, ApplianceProcess]:
    """Two appliances of one home, each on its own sound card, hear the same wake word."""
    apps = []
    for device, c in (("kitchen", card), ("living", second)):
        env = appliance_env(c.env, server_url, APPLIANCE_MQTT__URL=broker_url, APPLIANCE_MQTT__SITE="flat",
                            APPLIANCE_MQTT__DEVICE=device, APPLIANCE_MQTT__HOME="flat")
        apps.append(await ApplianceProcess(env).start())
    for app in apps:
        await app.wait_ready()
        await app.wait_for(lambda a=app: bool(a.events("mqtt_connected")), 20, "connected")  # type: ignore[misc]
    if stop_broker is not None:
        stop_broker.stop()
        for app in apps:
            await app.wait_for(lambda a=app: bool(a.events("error")), 20, "the broker lost")  # type: ignore[misc]
    utterance = read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate)
    for c, gain in zip((card, second), gains, strict=True):
        c.say((utterance.astype(np.float32) * gain).astype(np.int16))
    for app in apps:
        await app.wait_for(lambda a=app: bool(a.events("wake_arbitrated")), 30, "the wake word")  # type: ignore[misc]
    await asyncio.sleep(4)  # a session that opens does so well within this
    return apps[0], apps[1]


@pytest.fixture
def second_card(tmp_path: Path) -> Iterator[FifoSoundCard]:
    other = FifoSoundCard(tmp_path / "card2").open()
    yield other
    other.close()


@pytest.mark.parametrize("gains", [(1.0, 1.0), (1.0, 0.25)], ids=["same-level", "one-quieter"])
async def test_two_devices_of_one_home_answer_once(card: FifoSoundCard, second_card: FifoSoundCard,
                                                    mosquitto: Mosquitto, gains: tuple[float, float]) -> None:
    async with FakeRealtimeServer() as server:
        kitchen, living = await _two_devices_hear(card, second_card, mosquitto.url, server.url, gains)
        try:
            opened = [bool(a.events("session_open")) for a in (kitchen, living)]
            outcomes = [a.events("wake_arbitrated") for a in (kitchen, living)]
            scores = [o[0]["score"] for o in outcomes]
            assert opened.count(True) == 1, (scores, outcomes)
            assert len(server.connections) == 1
            winner = opened.index(True)
            if scores[0] != scores[1]:
                assert scores[winner] == max(scores) or outcomes[1 - winner][0]["reason"] == \
                    "another device answered first", (scores, outcomes)
            loser = (kitchen, living)[1 - winner]
            assert "waking" not in loser.states() and not loser.events("wake")  # it stayed idle: no chime
            print(f"scores {scores}; answered: {['kitchen', 'living'][winner]}; "
                  f"winner waited {outcomes[winner][0]['waited_ms']} ms")
        finally:
            for app in (kitchen, living):
                await app.stop()


async def test_with_the_broker_stopped_both_answer(card: FifoSoundCard, second_card: FifoSoundCard,
                                                   mosquitto: Mosquitto) -> None:
    async with FakeRealtimeServer() as server:
        kitchen, living = await _two_devices_hear(card, second_card, mosquitto.url, server.url, (1.0, 1.0),
                                                  stop_broker=mosquitto)
        try:
            assert [bool(a.events("session_open")) for a in (kitchen, living)] == [True, True]
            assert [a.events("wake_arbitrated")[0]["reason"] for a in (kitchen, living)] == ["no broker"] * 2
        finally:
            for app in (kitchen, living):
                await app.stop()
