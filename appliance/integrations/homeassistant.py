"""Home Assistant MQTT discovery: the retained config messages that make the appliance one device with
its entities (state, muted, volume, talk, last wake score, pending timers, announce: a notify entity).

Single-component discovery, one config per entity on `<prefix>/<component>/<device>/<entity>/config`
(the node id is the device's name, so the broker's ACL can let a device write only its own configs).
Every entity's availability is the device's `availability` topic, which the last will turns `offline`.
Home Assistant announces itself on `<prefix>/status` (`online`) after it starts: the configs are sent
again then, and on every reconnection to the broker.
"""

from __future__ import annotations

import json
from typing import Any

from ..state import State
from .topics import OFFLINE, ONLINE, DeviceTopics

COMPONENT = {
    "state": "sensor",
    "muted": "switch",
    "volume": "number",
    "talk": "button",
    "wake_score": "sensor",
    "timers": "sensor",
    "announce": "notify",
}


def birth_topic(prefix: str) -> str:
    return f"{prefix}/status"


def config_topic(prefix: str, topics: DeviceTopics, entity: str) -> str:
    return f"{prefix}/{COMPONENT[entity]}/{topics.device}/{entity}/config"


def device_info(topics: DeviceTopics, version: str) -> dict[str, Any]:
    return {
        "identifiers": [f"appliance_{topics.site}_{topics.device}"],
        "name": f"Voice appliance {topics.device}",
        "manufacturer": "appliance",
        "model": "Voice appliance",
        "sw_version": version,
        "suggested_area": topics.device,
    }


def _entity(entity: str, name: str, topics: DeviceTopics, version: str, **keys: Any) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": f"appliance_{topics.site}_{topics.device}_{entity}",
        "availability_topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device_info(topics, version),
        "origin": {"name": "appliance", "sw_version": version},
        **keys,
    }


def discovery_config(entity: str, topics: DeviceTopics, version: str) -> dict[str, Any]:
    """The discovery payload of one entity (a key of `COMPONENT`)."""
    if entity == "state":
        return _entity(entity, "State", topics, version, state_topic=topics.state_of("state"),
                       device_class="enum", options=[s.value for s in State], icon="mdi:account-voice")
    if entity == "muted":
        return _entity(entity, "Muted", topics, version, command_topic=topics.set_topic("muted"),
                       state_topic=topics.state_of("muted"), payload_on="ON", payload_off="OFF",
                       icon="mdi:microphone-off")
    if entity == "volume":
        return _entity(entity, "Volume", topics, version, command_topic=topics.set_topic("volume"),
                       state_topic=topics.state_of("volume"), min=0, max=100, step=1,
                       unit_of_measurement="%", mode="slider", icon="mdi:volume-high")
    if entity == "talk":
        return _entity(entity, "Talk", topics, version, command_topic=topics.set_topic("talk"),
                       payload_press="PRESS", icon="mdi:microphone-message")
    if entity == "wake_score":
        return _entity(entity, "Last wake score", topics, version, state_topic=topics.state_of("wake_score"),
                       entity_category="diagnostic", state_class="measurement", icon="mdi:ear-hearing")
    if entity == "timers":
        return _entity(entity, "Pending timers", topics, version, state_topic=topics.state_of("timers"),
                       json_attributes_topic=topics.state_of("timers/attributes"), state_class="measurement",
                       icon="mdi:timer-outline")
    if entity == "announce":  # notify.send_message publishes its message, the text to speak, here
        return _entity(entity, "Announce", topics, version, command_topic=topics.set_topic("announce"),
                       icon="mdi:bullhorn")
    raise ValueError(f"unknown entity {entity!r}")


def discovery_messages(prefix: str, topics: DeviceTopics, entities: list[str], version: str) -> dict[str, str]:
    """Topic -> retained payload for every entity; an entity turned off gets an empty payload, which
    removes what an earlier run announced."""
    out: dict[str, str] = {}
    for entity in COMPONENT:
        topic = config_topic(prefix, topics, entity)
        out[topic] = json.dumps(discovery_config(entity, topics, version)) if entity in entities else ""
    return out
