"""The MQTT integration's events and its fixed label sets, without the MQTT client.

Kept apart from `mqtt.py` (which imports aiomqtt and paho at module level) so that the metrics can
know these events without loading the client library: `Telemetry` imports this module only when a
broker is configured, and even then the client stays out of memory until the bridge itself starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..events import ApplianceEvent

# Why the bridge ignored a message on a command topic: the `reason` of the rate-limited log line and
# of `appliance_mqtt_rejected_total`. `refused`: it reached a command check and failed it (not JSON,
# not the expected shape, an unknown command, a value out of range, or the appliance declining it).
RejectReason = Literal["too_long", "not_text", "unknown_topic", "refused"]

# What one arbitration came to (`appliance_wake_arbitrations_total{outcome}`): `answered` (heard it
# best of several), `alone` (no other claim), `yielded` (another device answers), `no_broker` (none
# connected, or the claim could not be sent: answered as if alone), `broker_slow` (the broker did
# not echo the claim in time: answered), `gave_way` (it had answered, then another device that also
# answered and heard it better was seen: it ended its conversation; a second event for that wake).
ArbitrationOutcome = Literal["answered", "alone", "yielded", "no_broker", "broker_slow", "gave_way"]

_OUTCOMES: dict[str, ArbitrationOutcome] = {
    "heard it best": "answered",
    "alone": "alone",
    "another device heard it better": "yielded",
    "another device answered first": "yielded",
    "no broker": "no_broker",
    "claim not sent": "no_broker",
    "broker did not answer in time": "broker_slow",
    "another device answered too and heard it better": "gave_way",
}


@dataclass(frozen=True, kw_only=True)
class BrokerLost(ApplianceEvent):
    """The broker cannot be reached or refused the connection (once per outage, however many retries)."""

    name: ClassVar[str] = "error"
    logger: ClassVar[str] = "appliance.mqtt"
    level: ClassVar[int] = logging.ERROR
    not_fields: ClassVar[frozenset[str]] = frozenset({"text"})
    kind: str = "mqtt"
    broker: str
    retry_in_s: float
    text: str = ""

    def message(self) -> str:
        return f"MQTT broker {self.broker}: {self.text}; retrying, backing off up to the maximum"


@dataclass(frozen=True, kw_only=True)
class BrokerRecovered(ApplianceEvent):
    name: ClassVar[str] = "recovered"
    logger: ClassVar[str] = "appliance.mqtt"
    kind: str = "mqtt"
    broker: str
    down_s: float

    def message(self) -> str:
        return f"MQTT broker {self.broker} is back after {self.down_s:.0f} s"


@dataclass(frozen=True, kw_only=True)
class BrokerConnected(ApplianceEvent):
    name: ClassVar[str] = "mqtt_connected"
    logger: ClassVar[str] = "appliance.mqtt"
    broker: str
    client_id: str

    def message(self) -> str:
        return f"MQTT connected to {self.broker} as {self.client_id}"


@dataclass(frozen=True, kw_only=True)
class WakeArbitrated(ApplianceEvent):
    """The outcome of one arbitration: `answer` false means another device of the home answers."""

    name: ClassVar[str] = "wake_arbitrated"
    logger: ClassVar[str] = "appliance.mqtt.arbitration"
    answer: bool
    reason: str
    waited_ms: float
    score: float
    rivals: int
    winner: str | None = None

    def message(self) -> str:
        if self.answer:
            return f"wake arbitrated: answering ({self.reason}, {self.waited_ms:.0f} ms)"
        return f"wake arbitrated: {self.winner} answers ({self.reason})"

    def outcome(self) -> ArbitrationOutcome:
        """The reason as one of a fixed few (a reason not known here falls back on whether it answered)."""
        return _OUTCOMES.get(self.reason, "answered" if self.answer else "yielded")
