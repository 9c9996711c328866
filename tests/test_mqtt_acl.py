"""deploy/mosquitto/acl on a real mosquitto: each device writes only its own topics; Home Assistant
commands any device; a device cannot command or impersonate another."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.inproc import wait_until
from tests.mosquitto import Mosquitto
from tests.mqtt_support import Listener, bridged, listening

ACL = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "acl"
USERS = {"kitchen": "kitchen-pass-1", "living": "living-pass-1", "homeassistant": "ha-pass-123",
         "fleet-viewer": "viewer-pass-1"}


def login(user: str) -> dict[str, str]:
    return {"username": user, "password": USERS[user]}


async def sentinel(client: Listener, observer: Listener, topic: str) -> None:
    """Publish an allowed message after the denied ones and wait for it: messages of one client arrive
    in order, so whatever was denied before it would have arrived by then."""
    marker = f"sentinel-{asyncio.get_running_loop().time()}"
    await client.publish(topic, marker, qos=1)
    await observer.wait_for(lambda: marker in observer.payloads(topic), 5, "the sentinel")


async def test_each_device_writes_only_its_own_topics(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, acl_file=ACL, users=USERS).start()
    try:
        async with bridged(broker, username="kitchen", password=USERS["kitchen"]) as (app, bridge, _), \
                listening(broker.port, "#", **login("homeassistant")) as ha, \
                listening(broker.port, "appliances/#", **login("fleet-viewer")) as viewer:
            # The appliance works under the ACL: discovery, state and availability get through.
            await ha.wait_for(lambda: ha.last("appliances/flat/kitchen/availability") == "online", 10, "online")
            await ha.wait_for(lambda: ha.last("homeassistant/switch/kitchen/muted/config") is not None, 5, "config")
            async with listening(broker.port, "appliances/#", **login("living")) as living:
                # Another device cannot command the kitchen, impersonate it, or publish its discovery.
                await living.publish("appliances/flat/kitchen/set/muted", "ON", qos=1)
                await living.publish("appliances/flat/kitchen/command", json.dumps({"command": "mute"}), qos=1)
                await living.publish("appliances/flat/kitchen/availability", "offline", qos=1)
                await living.publish("homeassistant/switch/kitchen/muted/config", "{}", qos=1)
                await living.publish("appliances/flat/kitchen/wake", json.dumps(
                    {"home": "h", "device": "kitchen", "score": 1.0}), qos=1)
                await sentinel(living, ha, "appliances/flat/living/state")
                denied = [(t, p) for _, t, p, _ in ha.messages if "kitchen" in t and "living" in t + p]
                assert not any(t.endswith(("set/muted", "/command", "/wake")) for _, t, _, _ in ha.messages
                               if t.startswith("appliances/flat/kitchen/")), denied
                assert ha.last("appliances/flat/kitchen/availability") == "online"
                assert ha.last("homeassistant/switch/kitchen/muted/config") != "{}"
                assert not app.muted
                # A read-only viewer writes nothing at all.
                await viewer.publish("appliances/flat/kitchen/set/muted", "ON", qos=1)
                await viewer.publish("appliances/flat/viewer/state", "x", qos=1)
                await sentinel(living, ha, "appliances/flat/living/state")
                assert "x" not in ha.payloads("appliances/flat/viewer/state")
                assert not app.muted
            # Home Assistant may command it.
            await ha.publish("appliances/flat/kitchen/set/muted", "ON", qos=1)
            await wait_until(lambda: app.muted, 5, "muted by Home Assistant")
            await ha.wait_for(lambda: ha.last("appliances/flat/kitchen/muted") == "ON", 5, "the switch")
            assert bridge.link.connections == 1
    finally:
        broker.stop()
