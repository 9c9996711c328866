"""MQTT integrations: Home Assistant discovery, fleet topics, one answer per home.

Nothing here imports the MQTT client unless a broker is configured (`APPLIANCE_MQTT__URL`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import Appliance
    from .bridge import MqttBridge


def start_mqtt(app: Appliance) -> MqttBridge | None:
    """Start the MQTT bridge of a running appliance (on its loop); None when no broker is configured."""
    if app.settings.mqtt.url is None:
        return None
    from .. import __version__
    from .bridge import MqttBridge
    from .commands import ControlsCommands

    metrics = app.telemetry.watch_mqtt(arbitration=app.settings.mqtt.home is not None)
    bridge = MqttBridge(app.settings, app.events, ControlsCommands(app), __version__, on_rejected=metrics.reject)
    bridge.start()
    return bridge
