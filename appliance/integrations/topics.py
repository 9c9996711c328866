"""The topic names: one device's own subtree `appliances/<site>/<device>/…` (the only place it may write,
besides its Home Assistant discovery configs; see deploy/mosquitto/acl)."""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "appliances"
ONLINE, OFFLINE = "online", "offline"


@dataclass(frozen=True)
class DeviceTopics:
    site: str
    device: str

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.site}/{self.device}"

    # What the device publishes (retained: a subscriber that comes later sees the current value).
    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    def state_of(self, name: str) -> str:
        """`state`, `muted`, `volume`, `wake_score`, `timers`, `timers/attributes`, `status`."""
        return f"{self.base}/{name}"

    # Not retained: an answer to each command, and (when turned on) what was said.
    @property
    def ack(self) -> str:
        return f"{self.base}/ack"

    @property
    def transcript(self) -> str:
        return f"{self.base}/transcript"

    @property
    def wake(self) -> str:
        """Arbitration claims: this device heard a wake (see arbitration.py)."""
        return f"{self.base}/wake"

    # What the device listens to.
    def set_topic(self, name: str) -> str:
        """Home Assistant's entity commands: `set/muted` (ON/OFF), `set/volume` (0-100), `set/talk` (PRESS),
        `set/announce` (the text to speak: the notify entity's message)."""
        return f"{self.base}/set/{name}"

    @property
    def command(self) -> str:
        """The page's commands as JSON, `{"command": "mute"}`, for fleets and scripts; answered on `ack`."""
        return f"{self.base}/command"

    @property
    def set_all(self) -> str:
        return f"{self.base}/set/+"


ALL_WAKES = f"{ROOT}/+/+/wake"
