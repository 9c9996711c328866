"""The voice tool's view of enrolment ("learn my voice"): ask for the device's guided enrolment to
start when the conversation ends (``Controls.enroll_after_conversation``)."""

from __future__ import annotations

from typing import Any, Protocol

DEFAULT_NAME = "household"


class EnrolAnswer(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def error(self) -> str | None: ...

    @property
    def values(self) -> dict[str, Any]: ...


class EnrolmentControl(Protocol):
    """What `Appliance` offers (its `Controls`): the same checks as the `enroll` command."""

    def enroll_after_conversation(self, name: str) -> EnrolAnswer: ...


def profile_name(name: str) -> str:
    """The name the person gave, or the household's when they gave none."""
    return name.strip() or DEFAULT_NAME
