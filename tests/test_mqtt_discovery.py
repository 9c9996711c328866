"""Home Assistant discovery payloads, checked against what Home Assistant's MQTT documentation (and its
discovery schemas) require of each platform: required keys present, every key a documented one (a typo
would be ignored silently by Home Assistant), device-registry and availability rules."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from appliance.integrations import homeassistant as ha
from appliance.integrations.topics import DeviceTopics
from appliance.settings import MQTT_ENTITIES, Settings
from appliance.state import State

TOPICS = DeviceTopics("flat", "kitchen")

# The documented configuration variables used here, per platform (switch.mqtt, number.mqtt, button.mqtt,
# sensor.mqtt, notify.mqtt), and the ones each platform requires.
COMMON = {"name", "unique_id", "availability_topic", "payload_available", "payload_not_available", "device",
          "origin", "icon", "entity_category", "json_attributes_topic", "qos", "enabled_by_default", "object_id"}
DOCUMENTED = {
    "sensor": COMMON | {"state_topic", "device_class", "options", "state_class", "unit_of_measurement",
                        "value_template", "expire_after", "force_update"},
    "switch": COMMON | {"command_topic", "state_topic", "payload_on", "payload_off", "state_on", "state_off",
                        "optimistic", "retain", "device_class", "value_template"},
    "number": COMMON | {"command_topic", "state_topic", "min", "max", "step", "mode", "unit_of_measurement",
                        "device_class", "optimistic", "retain", "value_template"},
    "button": COMMON | {"command_topic", "payload_press", "device_class", "retain"},
    "notify": COMMON | {"command_topic", "command_template", "encoding", "retain"},
}
REQUIRED = {"sensor": {"state_topic"}, "switch": {"command_topic"}, "number": {"command_topic"},
            "button": {"command_topic"}, "notify": {"command_topic"}}
DEVICE_KEYS = {"identifiers", "connections", "name", "manufacturer", "model", "model_id", "sw_version",
               "hw_version", "serial_number", "suggested_area", "via_device", "configuration_url"}
ID = re.compile(r"[a-zA-Z0-9_-]+")


def topic_ok(topic: str) -> bool:
    return bool(topic) and "+" not in topic and "#" not in topic and "" not in topic.split("/")


@pytest.mark.parametrize("entity", MQTT_ENTITIES)
def test_each_entity_has_the_documented_required_keys(entity: str) -> None:
    component = ha.COMPONENT[entity]
    config = ha.discovery_config(entity, TOPICS, "1.2.3")
    assert REQUIRED[component] <= set(config), f"{entity}: missing {REQUIRED[component] - set(config)}"
    assert set(config) <= DOCUMENTED[component], f"{entity}: undocumented keys {set(config) - DOCUMENTED[component]}"
    # The device registry: a unique_id, and a device with identifiers or connections.
    assert config["unique_id"] and ID.fullmatch(config["unique_id"])
    assert set(config["device"]) <= DEVICE_KEYS
    assert config["device"].get("identifiers") or config["device"].get("connections")
    # Availability through the device's own topic, which the last will turns offline.
    assert config["availability_topic"] == "appliances/flat/kitchen/availability"
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
    for key, value in config.items():
        if key.endswith("_topic"):
            assert topic_ok(value) and value.startswith("appliances/flat/kitchen/"), (key, value)
    if config.get("entity_category") is not None:
        assert config["entity_category"] in ("config", "diagnostic")


def test_entity_specifics() -> None:
    state = ha.discovery_config("state", TOPICS, "1")
    # An enum sensor lists its options and has neither a unit nor a state class.
    assert state["device_class"] == "enum" and set(state["options"]) == {s.value for s in State}
    assert "state_class" not in state and "unit_of_measurement" not in state
    volume = ha.discovery_config("volume", TOPICS, "1")
    assert (volume["min"], volume["max"], volume["step"]) == (0, 100, 1) and volume["mode"] in ("auto", "box", "slider")
    assert ha.discovery_config("wake_score", TOPICS, "1")["entity_category"] == "diagnostic"
    timers = ha.discovery_config("timers", TOPICS, "1")
    assert timers["json_attributes_topic"] == "appliances/flat/kitchen/timers/attributes"
    muted = ha.discovery_config("muted", TOPICS, "1")
    assert muted["state_topic"] != muted["command_topic"]


def test_one_device_and_topics_of_the_documented_form() -> None:
    messages = ha.discovery_messages("homeassistant", TOPICS, list(MQTT_ENTITIES), "1.2.3")
    devices = set()
    for topic, payload in messages.items():
        prefix, component, node_id, object_id, last = topic.split("/")
        assert (prefix, last) == ("homeassistant", "config") and component in REQUIRED
        assert ID.fullmatch(node_id) and ID.fullmatch(object_id)
        devices.add(json.dumps(json.loads(payload)["device"], sort_keys=True))
    assert len(devices) == 1  # one device with six entities
    assert len({json.loads(p)["unique_id"] for p in messages.values()}) == len(MQTT_ENTITIES)


def test_entities_turned_off_are_removed() -> None:
    messages = ha.discovery_messages("ha", TOPICS, ["state", "muted"], "1")
    assert {t.split("/")[3] for t, p in messages.items() if p} == {"state", "muted"}
    # An empty retained config removes an entity an earlier run announced.
    assert messages["ha/button/kitchen/talk/config"] == ""


@pytest.mark.parametrize("mqtt", [
    {"url": "mqtt://192.168.1.5"},  # unencrypted off the machine
    {"url": "http://127.0.0.1"},
    {"url": "mqtts://user:pw@broker"},  # a password in the URL would be logged with it
    {"url": "mqtt://127.0.0.1", "entities": "state,speakers"},
    {"url": "mqtt://127.0.0.1", "device": "kitchen/+"},
    {"url": "mqtt://127.0.0.1", "discovery_prefix": "ha/#"},
])
def test_bad_mqtt_settings_are_refused_with_a_message(mqtt: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(mqtt=mqtt)
    assert "mqtt" in str(info.value)


def test_password_file_and_masking(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "pw"
    path.write_text("broker-password-123\n")
    s = Settings(mqtt={"url": "mqtts://broker.lan", "password_file": str(path), "entities": "state, muted"})
    assert s.mqtt.password is not None and s.mqtt.password.get_secret_value() == "broker-password-123"
    assert s.mqtt.entities == ["state", "muted"]
    assert "broker-password-123" not in json.dumps(s.masked())
