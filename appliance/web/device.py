"""What the web layer needs from the running appliance (`appliance.app.Appliance` provides it)."""

from __future__ import annotations

from typing import Protocol

from ..controls import Controls
from ..events import EventBus
from ..settings import Settings
from ..state import StateMachine


class Device(Protocol):
    settings: Settings
    api_key: str
    events: EventBus
    state: StateMachine
    controls: Controls  # every command the page and API send goes through it

    @property
    def muted(self) -> bool: ...

    @property
    def volume(self) -> int: ...
