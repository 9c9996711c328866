"""MQTT in the metrics, against a real mosquitto and through `start_mqtt` (the appliance's own wiring):
whether the device is connected, how often it lost the broker, what it rejected, how arbitrations ended."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from appliance.app import Appliance
from appliance.integrations import start_mqtt
from appliance.integrations.bridge import MqttBridge
from appliance.integrations.mqtt_events import _OUTCOMES, BrokerLost, WakeArbitrated
from tests.e2e_support import python_json
from tests.inproc import EventLog, make_settings
from tests.mosquitto import Mosquitto, mosquitto_fixture  # noqa: F401 (the `mosquitto` fixture)
from tests.mqtt_support import listening
from tests.test_mqtt_broker import BASE, HOSTILE

Started = tuple[Appliance, MqttBridge, EventLog]


def value(app: Appliance, name: str, **labels: str) -> float | None:
    return app.telemetry.registry.get_sample_value(name, labels)


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def started(broker: Mosquitto, *, connect: bool = True, **mqtt: Any) -> AsyncIterator[Started]:
    """An Appliance (no audio) whose MQTT bridge `start_mqtt` started, as `appliance run` does."""
    settings = make_settings(mqtt={"url": broker.url, "site": "flat", "device": "kitchen", **mqtt})
    app = Appliance(settings, "sk-test", detector=None)
    log = EventLog()
    logging.getLogger("appliance").addHandler(log)
    bridge = start_mqtt(app)
    assert bridge is not None
    try:
        if connect:
            await asyncio.wait_for(bridge.link.connected.wait(), 10)
        yield app, bridge, log
    finally:
        await bridge.close()
        logging.getLogger("appliance").removeHandler(log)



def test_the_metrics_know_the_mqtt_events_without_loading_the_client() -> None:
    loaded = python_json(
        "import json, sys\n"
        "from appliance.telemetry import Telemetry\n"
        "t = Telemetry()\n"
        "before = sorted(m for m in sys.modules if m.startswith(('aiomqtt', 'paho', 'appliance.integrations.')))\n"
        "t.watch_mqtt(arbitration=True)\n"
        "after = sorted(m for m in sys.modules if m.startswith(('aiomqtt', 'paho', 'appliance.integrations.')))\n"
        "print(json.dumps({'before': before, 'after': after,\n"
        "                  'gauge': t.registry.get_sample_value('appliance_mqtt_connected')}))\n",
        timeout=120,
    )
    assert loaded == {"before": [], "after": ["appliance.integrations.mqtt_events"], "gauge": 0.0}


def test_without_a_broker_there_are_no_mqtt_metrics() -> None:
    app = Appliance(make_settings(), "sk-test", detector=None)
    assert start_mqtt(app) is None
    assert b"appliance_mqtt" not in app.telemetry.metrics_text()
    assert b"appliance_wake_arbitrations" not in app.telemetry.metrics_text()


async def test_connected_follows_the_broker_and_each_outage_is_one_disconnect(mosquitto: Mosquitto) -> None:
    await asyncio.to_thread(mosquitto.stop)  # down at boot: not connected, and no disconnect either
    async with started(mosquitto, connect=False, reconnect_max_s=1) as (app, bridge, log):
        assert value(app, "appliance_mqtt_connected") == 0
        await until(lambda: bool(log.events("error")), 15, "the broker reported lost")
        assert value(app, "appliance_mqtt_connected") == 0
        assert value(app, "appliance_mqtt_disconnects_total") == 0

        await asyncio.to_thread(mosquitto.start)
        await asyncio.wait_for(bridge.link.connected.wait(), 10)
        assert value(app, "appliance_mqtt_connected") == 1

        for outage in (1, 2):
            connections = bridge.link.connections
            await asyncio.to_thread(mosquitto.stop)
            await until(lambda: value(app, "appliance_mqtt_connected") == 0, 10, "connected 0")
            await asyncio.sleep(2.5)  # several retries (1 s apart): still one outage
            assert value(app, "appliance_mqtt_disconnects_total") == outage
            await asyncio.to_thread(mosquitto.start)
            await until(lambda: bridge.link.connections > connections, 10, "the reconnection")  # noqa: B023
            assert value(app, "appliance_mqtt_connected") == 1
            assert value(app, "appliance_mqtt_disconnects_total") == outage
        lost = [e for e in log.events("error") if e.get("kind") == "mqtt"]
        assert len(lost) == 3  # at boot and the two outages: one line each, as counted


def _reason(suffix: str, payload: bytes) -> str:
    """Why the bridge ignores one of the hostile messages (its checks, in its order)."""
    if len(payload) > 4096:
        return "too_long"
    try:
        payload.decode()
    except UnicodeDecodeError:
        return "not_text"
    return "unknown_topic" if suffix == "set/reboot" else "refused"


async def test_every_rejected_message_is_counted_though_few_are_logged(mosquitto: Mosquitto) -> None:
    async with started(mosquitto) as (app, bridge, log), listening(mosquitto.port, f"{BASE}/#") as op:
        rounds = 3
        for _ in range(rounds):
            for suffix, payload in HOSTILE:
                await op.publish(f"{BASE}/{suffix}", payload)
        sent = rounds * len(HOSTILE)
        await op.wait_for(lambda: len(op.payloads(f"{BASE}/ack")) >= sent, 15, "an answer to each")
        expected: dict[str, int] = {}
        for suffix, payload in HOSTILE:
            reason = _reason(suffix, payload)
            expected[reason] = expected.get(reason, 0) + rounds
        assert set(expected) == {"too_long", "not_text", "unknown_topic", "refused"}
        counted = {r: value(app, "appliance_mqtt_rejected_total", reason=r) for r in expected}
        assert counted == expected
        lines = log.events("mqtt_rejected")
        assert len(lines) < sent // 4  # the log is rate limited; the counter is not
        for reason, count in expected.items():
            assert count > len([r for r in lines if r["reason"] == reason]), reason
        # No free text in the labels: the fixed reasons only, never a topic or a payload.
        text = app.telemetry.metrics_text().decode()
        assert "reboot" not in text and "format_disk" not in text
        assert re.findall(r'appliance_mqtt_rejected_total\{reason="(\w+)"}', text) == \
            ["too_long", "not_text", "unknown_topic", "refused"]


async def test_arbitration_outcomes_are_counted(mosquitto: Mosquitto) -> None:
    arbitrating = {"home": "flat", "arbitration_window_ms": 400}
    async with started(mosquitto, device="kitchen", **arbitrating) as (kitchen, kb, _), \
            started(mosquitto, device="living", **arbitrating) as (living, lb, _):
        assert kb.arbitration is not None and lb.arbitration is not None
        assert value(kitchen, "appliance_wake_arbitrations_total", outcome="yielded") == 0
        answers = await asyncio.gather(kb.arbitration.should_answer(0.6), lb.arbitration.should_answer(0.9))
        assert answers == [False, True]
        assert value(kitchen, "appliance_wake_arbitrations_total", outcome="yielded") == 1
        assert value(living, "appliance_wake_arbitrations_total", outcome="answered") == 1
        assert value(kitchen, "appliance_wake_arbitrations_total", outcome="answered") == 0

        await asyncio.to_thread(mosquitto.stop)
        await until(lambda: not kb.link.connected.is_set(), 10, "the broker gone")
        assert await kb.arbitration.should_answer(0.6) is True
        assert value(kitchen, "appliance_wake_arbitrations_total", outcome="no_broker") == 1


def test_every_reason_of_the_arbitration_has_its_outcome() -> None:
    """The reasons `Arbitration._decide` gives, read from its source: each maps to an outcome, so none
    falls back on answered/yielded unseen (a new reason belongs in mqtt_events' `_OUTCOMES`)."""
    source = (Path(__file__).parents[1] / "appliance/integrations/arbitration.py").read_text()
    reasons = set(re.findall(r'return (?:True|False), "([^"]+)"', source))
    reasons |= set(re.findall(r'"([^"]+)" if rivals else "([^"]+)"', source)[0])
    reasons |= set(re.findall(r'^GAVE_WAY = "([^"]+)"', source, re.M))
    assert reasons and reasons <= set(_OUTCOMES), reasons - set(_OUTCOMES)
    assert WakeArbitrated(answer=True, reason="something new", waited_ms=1, score=0.5, rivals=0).outcome() \
        == "answered"
    assert WakeArbitrated(answer=False, reason="something new", waited_ms=1, score=0.5, rivals=1,
                          winner="hall").outcome() == "yielded"


def test_the_events_are_where_they_were_too() -> None:
    from appliance.integrations import arbitration, mqtt

    assert mqtt.BrokerLost is BrokerLost and arbitration.WakeArbitrated is WakeArbitrated
