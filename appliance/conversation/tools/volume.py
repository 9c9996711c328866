"""The volume tools' view of the appliance: its persisted playback gain (answers and earcons)."""

from __future__ import annotations

from typing import Protocol


class VolumeControl(Protocol):
    """What `Appliance` offers: the playback volume in percent, persisted in the data directory."""

    @property
    def volume(self) -> int: ...

    def set_volume(self, percent: int) -> object: ...


def clamp_percent(value: float) -> int:
    return int(max(0, min(100, round(value))))
