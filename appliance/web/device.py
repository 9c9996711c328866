"""What the web layer needs from the running appliance (`appliance.app.Appliance` provides it)."""

from __future__ import annotations

from typing import Protocol

from ..events import EventBus, TriggerSource
from ..settings import Settings
from ..state import StateMachine


class Device(Protocol):
    settings: Settings
    api_key: str
    events: EventBus
    state: StateMachine

    @property
    def muted(self) -> bool: ...

    @property
    def volume(self) -> int: ...

    def set_muted(self, muted: bool, reason: str = "api") -> None: ...

    def set_volume(self, percent: int) -> int: ...

    def start_conversation(self, source: TriggerSource = "api") -> bool: ...

    def stop_conversation(self) -> bool: ...
