"""The events of enrolment from the device (``enrolment_flow.py``): the page and the API follow them.

``enrol_prompt`` (say it now: take ``take`` of ``of``), ``enrol_take`` (that take's verdict: ``ok``,
``reason`` for a person, the stock model's ``score``), ``enrolled`` (saved and in use: ``takes``,
``train_s``), ``enrol_failed`` (``reason``; ``"cancelled"`` for a stop or a button press), and
``profile_forgotten`` (``Controls.forget_profile`` deleted it: every open page drops it from its list).

Each names the voice. On the device API (``as_dict``) that is ``name``, as the command sent it; in the
log line it is ``profile`` (as in the ``wake`` event), because ``name`` is a field of every Python log
record and cannot be given again. The API messages carry both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .events import ApplianceEvent
from .redaction import mask

CANCELLED = "cancelled"  # enrol_failed's reason for a stop command or a button press


@dataclass(frozen=True, kw_only=True)
class EnrolmentEvent(ApplianceEvent):
    logger: ClassVar[str] = "appliance.enrolment"
    profile: str  # the voice being enrolled (the command's "name")

    def as_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = mask({"event": self.name, "name": self.profile, **self.fields()})
        return payload


@dataclass(frozen=True, kw_only=True)
class EnrolPrompt(EnrolmentEvent):
    """The chime has played: say the wake phrase now. ``take`` counts the good takes asked for, so a
    refused take is asked again under the same number."""

    name: ClassVar[str] = "enrol_prompt"
    take: int
    of: int

    def message(self) -> str:
        return f"enrolling {self.profile!r}: say the wake phrase now (take {self.take} of {self.of})"


@dataclass(frozen=True, kw_only=True)
class EnrolTake(EnrolmentEvent):
    """One take checked: ``ok``, or refused with ``reason``; ``score`` is the stock model's best over it."""

    name: ClassVar[str] = "enrol_take"
    take: int
    ok: bool
    reason: str | None
    score: float

    def fields(self) -> dict[str, Any]:
        return {**super().fields(), "reason": self.reason}  # null when the take is good, never left out

    def message(self) -> str:
        verdict = "good" if self.ok else f"refused: {self.reason}"
        return f"enrolling {self.profile!r}: take {self.take} {verdict}"


@dataclass(frozen=True, kw_only=True)
class Enrolled(EnrolmentEvent):
    """The voice is trained, saved in the data directory, and the running wake word uses it."""

    name: ClassVar[str] = "enrolled"
    takes: int
    train_s: float

    def message(self) -> str:
        return f"voice {self.profile!r} enrolled from {self.takes} takes ({self.train_s:.1f} s of training)"


@dataclass(frozen=True, kw_only=True)
class EnrolFailed(EnrolmentEvent):
    """Enrolment ended without a profile: cancelled, muted, too many bad takes, the audio failed, or
    training or saving failed. Nothing was saved."""

    name: ClassVar[str] = "enrol_failed"
    reason: str

    def message(self) -> str:
        return f"enrolling {self.profile!r} failed: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class ProfileForgotten(EnrolmentEvent):
    """An enrolled voice was deleted: the running wake word no longer uses it."""

    name: ClassVar[str] = "profile_forgotten"

    def message(self) -> str:
        return f"voice {self.profile!r} forgotten"


@dataclass(frozen=True, kw_only=True)
class ProfilesReloaded(ApplianceEvent):
    """Another process (`appliance wakeword enroll`/`forget`/`forget-learning`) changed the enrolled
    voices or what was learned; the running wake word uses them now, and every open page refreshes."""

    name: ClassVar[str] = "wake_profiles_reloaded"
    logger: ClassVar[str] = "appliance.wake_learning"
    profiles: list[str]  # the enrolled voices now in use

    def message(self) -> str:
        return f"wake-word profiles changed in the data directory: now {', '.join(self.profiles) or 'none'}"
