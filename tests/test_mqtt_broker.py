"""The MQTT bridge against a real mosquitto: Home Assistant drives the appliance, hostile payloads are
ignored, a broker restart is survived (reconnect, discovery re-published, one error/recovered pair)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from typing import Any

from appliance import __version__
from appliance.app import Appliance
from appliance.integrations.bridge import MqttBridge
from appliance.integrations.commands import ControlsCommands
from appliance.state import State
from tests.inproc import EventLog, make_settings
from tests.mosquitto import Mosquitto, mosquitto_fixture  # noqa: F401 (the `mosquitto` fixture)
from tests.mqtt_support import Listener, bridged, listening

BASE = "appliances/flat/kitchen"


async def ready(ha: Listener) -> None:
    await ha.wait_for(lambda: ha.last(f"{BASE}/availability") == "online", 10, "the device online")


async def test_home_assistant_mutes_the_appliance_and_the_switch_follows(mosquitto: Mosquitto) -> None:
    async with bridged(mosquitto) as (app, bridge, _), \
            listening(mosquitto.port, "homeassistant/#", f"{BASE}/#") as ha:
        await ready(ha)
        config = json.loads(ha.last("homeassistant/switch/kitchen/muted/config") or "{}")
        assert config["command_topic"] == f"{BASE}/set/muted" and ha.last(config["state_topic"]) == "OFF"
        assert ha.last(f"{BASE}/state") == "idle"

        await ha.publish(config["command_topic"], "ON")
        await ha.wait_for(lambda: ha.last(config["state_topic"]) == "ON", 5, "the switch to follow")
        assert app.muted and app.state.state == State.MUTED
        assert ha.last(f"{BASE}/state") == "muted"
        acks = [json.loads(p) for p in ha.payloads(f"{BASE}/ack")]
        assert acks[-1]["ok"] is True and acks[-1]["command"] == "mute"

        number = json.loads(ha.last("homeassistant/number/kitchen/volume/config") or "{}")
        await ha.publish(number["command_topic"], "35.0")
        await ha.wait_for(lambda: ha.last(number["state_topic"]) == "35", 5, "the volume to follow")
        assert app.volume == 35

        await ha.publish(config["command_topic"], "OFF")
        await ha.wait_for(lambda: ha.last(config["state_topic"]) == "OFF", 5, "unmuted")
        assert not app.muted and ha.last(f"{BASE}/state") == "idle"

        # Talk as the page's Talk: refused with the page's reason while the audio is not open.
        await ha.publish(f"{BASE}/set/talk", "PRESS")
        await ha.wait_for(lambda: len(ha.payloads(f"{BASE}/ack")) >= 4, 5, "the talk ack")
        talk = json.loads(ha.payloads(f"{BASE}/ack")[-1])
        assert talk["command"] == "start" and talk["ok"] is False

        # Home Assistant restarted: its birth message makes the device announce its entities again.
        before = len(ha.payloads("homeassistant/sensor/kitchen/state/config"))
        await ha.publish("homeassistant/status", "online")
        await ha.wait_for(lambda: len(ha.payloads("homeassistant/sensor/kitchen/state/config")) > before, 5,
                          "discovery again after the birth message")


async def test_fleet_commands_and_timers_and_status(mosquitto: Mosquitto) -> None:
    async with bridged(mosquitto) as (app, bridge, _), listening(mosquitto.port, f"{BASE}/#") as op:
        await ready(op)
        app.timers.add(600, "pasta")
        await op.wait_for(lambda: op.last(f"{BASE}/timers") == "1", 5, "the timer sensor")
        attributes = json.loads(op.last(f"{BASE}/timers/attributes") or "{}")
        assert [t["label"] for t in attributes["timers"]] == ["pasta"]
        await op.publish(f"{BASE}/command", json.dumps({"command": "volume", "value": 20}))
        await op.wait_for(lambda: app.volume == 20, 5, "the volume command")
        await op.publish(f"{BASE}/command", json.dumps({"command": "dismiss"}))
        await op.wait_for(lambda: any('"dismiss"' in p for p in op.payloads(f"{BASE}/ack")), 5, "dismiss ack")
        assert json.loads(op.payloads(f"{BASE}/ack")[-1])["error"] == "nothing is ringing"
        status = json.loads(op.last(f"{BASE}/status") or "{}")
        assert status["volume"] == 20 and status["timers"] == 1 and status["state"] == "idle"


HOSTILE: list[tuple[str, bytes]] = [
    ("command", b"{not json"),
    ("command", b"\xff\xfe\x00garbage"),
    ("command", b"[1, 2, 3]"),
    ("command", json.dumps({"command": 42}).encode()),
    ("command", json.dumps({"command": "format_disk"}).encode()),
    ("command", json.dumps({"command": "volume", "value": 1e9}).encode()),
    ("command", json.dumps({"command": "volume", "value": "50"}).encode()),
    ("command", json.dumps({"command": "volume", "value": True}).encode()),
    ("command", b'{"command": "volume", "value": NaN}'),
    ("command", b"[" * 5000 + b"]" * 5000),
    ("command", json.dumps({"command": "mute", "pad": "x" * 20000}).encode()),
    ("set/volume", b"1e9"),
    ("set/volume", b"-5"),
    ("set/volume", b"inf"),
    ("set/volume", b"nan"),
    ("set/volume", b"loud"),
    ("set/muted", b"maybe"),
    ("set/muted", b"ON" + b" " * 60000),
    ("set/talk", b"PUSH"),
    ("set/reboot", b"now"),
    ("set/announce", b""),
    ("set/announce", b"\x1b\x00\x07\r\n\xe2\x80\xae"),  # nothing left once the control characters are gone
    ("set/announce", b"x" * 3000),  # under the message limit, over the text's 500 characters
    ("set/announce", b"\xff\xfe"),
    ("command", json.dumps({"command": "announce"}).encode()),
    ("command", json.dumps({"command": "announce", "text": 42}).encode()),
    ("command", json.dumps({"command": "announce", "text": ["a", "b"]}).encode()),
    ("command", json.dumps({"command": "announce", "text": "y" * 501}).encode()),
]


async def test_hostile_payloads_are_logged_and_ignored(mosquitto: Mosquitto) -> None:
    async with bridged(mosquitto) as (app, bridge, log), listening(mosquitto.port, f"{BASE}/#") as op:
        await ready(op)
        volume = app.volume
        for _ in range(3):
            for suffix, payload in HOSTILE:
                await op.publish(f"{BASE}/{suffix}", payload)
        sent = 3 * len(HOSTILE)
        await op.wait_for(lambda: len(op.payloads(f"{BASE}/ack")) >= sent, 15, "an answer to each")
        acks = [json.loads(p) for p in op.payloads(f"{BASE}/ack")]
        assert all(a["ok"] is False for a in acks), [a for a in acks if a["ok"]]
        assert app.volume == volume and not app.muted and app.state.state == State.IDLE
        assert app.announcer.waiting == 0
        # Refused announcements are said, summed per source (announcements/refusals.py): not one per message.
        announced = log.events("announce")
        assert {e["action"] for e in announced} == {"refused"} and len(announced) <= 4, announced
        # Logged, but rate-limited: one line per kind of rejection, not one per message.
        rejected = log.events("mqtt_rejected")
        assert rejected and len(rejected) < len(HOSTILE) // 2, [r["message"] for r in rejected]
        assert bridge.link.connections == 1 and bridge.link.connected.is_set()
        # Still obeys a good command afterwards.
        await op.publish(f"{BASE}/set/muted", "ON")
        await op.wait_for(lambda: op.last(f"{BASE}/muted") == "ON", 5, "a good command after the garbage")


async def test_home_assistant_notify_and_the_command_topic_queue_announcements(mosquitto: Mosquitto) -> None:
    async with bridged(mosquitto) as (app, bridge, log), \
            listening(mosquitto.port, "homeassistant/#", f"{BASE}/#") as ha:
        await ready(ha)
        config = json.loads(ha.last("homeassistant/notify/kitchen/announce/config") or "{}")
        assert config["command_topic"] == f"{BASE}/set/announce"
        # notify.send_message publishes its message as it is: the payload is the text.
        await ha.publish(config["command_topic"], "Dinner is ready")
        await ha.publish(f"{BASE}/command", json.dumps({"command": "announce", "text": "The bus leaves in 5"}))
        await ha.wait_for(lambda: len(ha.payloads(f"{BASE}/ack")) >= 2, 5, "two acks")
        acks = [json.loads(p) for p in ha.payloads(f"{BASE}/ack")]
        assert [(a["command"], a["ok"], a["announcement"], a["waiting"]) for a in acks] == [
            ("announce", True, 1, 0), ("announce", True, 2, 1)]
        queued = log.events("announce")
        assert [(e["action"], e["source"], e["chars"]) for e in queued] == [
            ("queued", "homeassistant", 15), ("queued", "mqtt", 19)]
        assert "Dinner is ready" not in json.dumps([r["message"] for r in log.records])


async def test_broker_restart_reconnects_and_republishes_discovery(mosquitto: Mosquitto) -> None:
    async with bridged(mosquitto, reconnect_max_s=2) as (app, bridge, log):
        async with listening(mosquitto.port, f"{BASE}/#", "homeassistant/#") as ha:
            await ready(ha)
        await asyncio.to_thread(mosquitto.stop)
        await asyncio.sleep(6)  # several reconnection attempts (1 s, 2 s, 2 s…)
        app.controls.set_muted(True)  # a change while the broker is away is published once it is back
        await asyncio.to_thread(mosquitto.start)  # no persistence: the broker forgot every retained message
        await asyncio.wait_for(_reconnected(bridge), 15)
        async with listening(mosquitto.port, f"{BASE}/#", "homeassistant/#") as ha:
            await ha.wait_for(lambda: ha.last("homeassistant/switch/kitchen/muted/config") is not None, 5,
                              "discovery re-published")
            await ha.wait_for(lambda: ha.last(f"{BASE}/muted") == "ON", 5, "the state re-published")
            assert ha.last(f"{BASE}/availability") == "online"
        errors = [r for r in log.events("error") if r.get("kind") == "mqtt"]
        recovered = [r for r in log.events("recovered") if r.get("kind") == "mqtt"]
        assert len(errors) == 1 and len(recovered) == 1, [r["message"] for r in errors + recovered]
        assert bridge.link.connections == 2


async def _reconnected(bridge: MqttBridge) -> None:
    while bridge.link.connections < 2 or not bridge.link.connected.is_set():
        await asyncio.sleep(0.05)


async def test_refused_login_is_one_error_line_and_the_password_is_never_logged(tmp_path: Any) -> None:
    broker = Mosquitto(tmp_path, users={"kitchen": "right-password"}).start()
    settings = make_settings(mqtt={"url": broker.url, "device": "kitchen", "username": "kitchen",
                                   "password": "wrong-password-1", "reconnect_max_s": 1})
    app = Appliance(settings, "sk-test", detector=None)
    log = EventLog()
    logging.getLogger("appliance").addHandler(log)
    bridge = MqttBridge(settings, app.events, ControlsCommands(app), __version__)
    bridge.start()
    try:
        await asyncio.sleep(5)  # 1 s, then 1 s…: several refusals
        assert not bridge.link.connected.is_set()
        errors = [r for r in log.events("error") if r.get("kind") == "mqtt"]
        assert len(errors) == 1, [r["message"] for r in errors]
        assert "wrong-password-1" not in json.dumps([r["message"] for r in log.records])
        app.controls.set_volume(30)  # the appliance goes on regardless
        assert app.volume == 30
    finally:
        await bridge.close()
        logging.getLogger("appliance").removeHandler(log)
        broker.stop()


def test_without_a_broker_url_nothing_mqtt_is_imported() -> None:
    code = (
        "import sys, asyncio\n"
        "from appliance.app import Appliance\n"
        "from tests.inproc import make_settings\n"
        "from appliance.integrations import start_mqtt\n"
        "async def main():\n"
        "    app = Appliance(make_settings(), 'sk-test', detector=None)\n"
        "    assert start_mqtt(app) is None\n"
        "asyncio.run(main())\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('aiomqtt', 'paho', 'appliance.integrations.')))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


async def test_the_connection_stays_up_across_keepalives(mosquitto: Mosquitto) -> None:
    """Idle for several keep-alive periods (MQTT_SOAK_S, default 12 s; run once with 75 for more than a
    minute): the pings keep it connected, no reconnection, no error, and it still answers."""
    import os

    soak_s = float(os.environ.get("MQTT_SOAK_S", "12"))
    async with bridged(mosquitto, keepalive_s=5) as (app, bridge, log), \
            listening(mosquitto.port, f"{BASE}/#", keepalive=5) as ha:
        await ready(ha)
        await asyncio.sleep(soak_s)
        await ha.publish(f"{BASE}/set/volume", "42")
        await ha.wait_for(lambda: ha.last(f"{BASE}/volume") == "42", 5, "the volume after the idle spell")
        assert bridge.link.connections == 1 and not log.events("error")
        availability = ha.payloads(f"{BASE}/availability")
        assert availability[-1] == "online" and "offline" not in availability


async def test_a_ca_file_that_is_no_certificate_is_one_error_not_a_crash(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    settings = make_settings(mqtt={"url": "mqtts://127.0.0.1:1", "device": "kitchen", "ca_file": str(ca),
                                   "reconnect_max_s": 1})
    app = Appliance(settings, "sk-test", detector=None)
    log = EventLog()
    logging.getLogger("appliance").addHandler(log)
    bridge = MqttBridge(settings, app.events, ControlsCommands(app), __version__)
    bridge.start()
    try:
        await asyncio.sleep(3.5)
        assert bridge._task is not None and not bridge._task.done()  # still retrying
        errors = [r for r in log.events("error") if r.get("kind") == "mqtt"]
        assert len(errors) == 1, [r["message"] for r in log.records]
    finally:
        await bridge.close()
        logging.getLogger("appliance").removeHandler(log)


async def test_mqtts_with_the_brokers_ca(tmp_path: Any) -> None:
    from tests.mosquitto import make_certificates

    ca, cert, key = make_certificates(tmp_path)
    broker = Mosquitto(tmp_path, tls=(cert, key)).start()
    try:
        async with bridged(broker, ca_file=str(ca)) as (app, bridge, log):
            assert bridge.link.tls and bridge.link.connected.is_set()
        # Without the broker's CA (the system's CAs do not know it), the certificate is refused.
        settings = make_settings(mqtt={"url": broker.url, "device": "kitchen", "reconnect_max_s": 1})
        other = Appliance(settings, "sk-test", detector=None)
        untrusting = MqttBridge(settings, other.events, ControlsCommands(other), __version__)
        untrusting.start()
        await asyncio.sleep(2)
        assert not untrusting.link.connected.is_set() and untrusting.link.connections == 0
        await untrusting.close()
    finally:
        broker.stop()


async def test_transcripts_stay_off_the_broker_unless_turned_on(mosquitto: Mosquitto) -> None:
    from appliance.events import TranscriptLine

    for enabled in (False, True):
        async with bridged(mosquitto, publish_transcripts=enabled) as (app, bridge, _), \
                listening(mosquitto.port, f"{BASE}/#") as op:
            await ready(op)
            app.events.publish(TranscriptLine(role="user", text="what is the secret family recipe"))
            app.controls.set_volume(app.controls.volume - 1)  # later: the transcript would come first
            await op.wait_for(lambda: op.last(f"{BASE}/volume") == str(app.volume), 5, "the volume")
            said = [json.loads(p)["text"] for p in op.payloads(f"{BASE}/transcript")]
            assert said == (["what is the secret family recipe"] if enabled else [])
