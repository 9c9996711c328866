"""Refused announcements are counted and said: `Controls.announce` with a text it refuses or a full
queue publishes an `announce` event with action `refused` (no announcement number, never the text),
which the log writes and `appliance_announcements_total{action="refused", source}` counts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from appliance.announcements import queue as announce_queue
from appliance.announcements.refusals import Refusals
from appliance.controls import Ack
from appliance.events import log_subscriber
from appliance.telemetry import Telemetry
from tests.test_announcements import Parts


def refused(telemetry: Telemetry, source: str) -> float | None:
    return telemetry.registry.get_sample_value("appliance_announcements_total",
                                               {"action": "refused", "source": source})


def metered(tmp_path: Path) -> tuple[Parts, Telemetry]:
    parts, telemetry = Parts(tmp_path), Telemetry()
    parts.events.subscribe(telemetry.on_event)
    return parts, telemetry


@pytest.mark.parametrize(("text", "chars", "error"), [
    ("", 0, "text is empty"),
    ("\x00\x1b\x07\u202e", 4, "text is empty"),  # control and format characters only
    ("x" * 501, 501, "text too long (501 characters, at most 500)"),
    (42, 0, "text must be a string"),
])
def test_a_refused_text_is_counted_and_said(tmp_path: Path, text: Any, chars: int, error: str) -> None:
    parts, telemetry = metered(tmp_path)
    assert parts.controls.announce(text, "mqtt") == Ack(False, error)
    assert refused(telemetry, "mqtt") == 1
    assert refused(telemetry, "api") is None  # by its source
    [event] = parts.announce_events()
    assert (event.action, event.source, event.chars, event.error) == ("refused", "mqtt", chars, error)
    assert event.announcement_id is None and "announcement_id" not in event.as_dict()
    assert parts.announcer.waiting == 0


def test_a_full_queue_refusal_is_counted(tmp_path: Path) -> None:
    parts, telemetry = metered(tmp_path)  # the announcer is not running: every one waits
    for i in range(announce_queue.QUEUE_SIZE):
        assert parts.controls.announce(f"number {i}", "homeassistant").ok
    assert refused(telemetry, "homeassistant") is None
    ack = parts.controls.announce("one too many", "homeassistant")
    assert ack == Ack(False, f"{announce_queue.QUEUE_SIZE} announcements are already waiting")
    assert refused(telemetry, "homeassistant") == 1
    assert telemetry.registry.get_sample_value(
        "appliance_announcements_total", {"action": "queued", "source": "homeassistant"}) == announce_queue.QUEUE_SIZE
    assert parts.actions() == ["queued"] * announce_queue.QUEUE_SIZE + ["refused"]
    assert parts.announce_events()[-1].chars == len("one too many")


def test_refused_without_an_announcer_too(tmp_path: Path) -> None:
    parts, telemetry = metered(tmp_path)
    parts.controls.announcer = None
    assert parts.controls.announce("hi", "api") == Ack(False, "announcements are not available")
    assert refused(telemetry, "api") == 1


def test_a_refusal_logs_why_and_never_the_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    parts, telemetry = metered(tmp_path)
    parts.events.subscribe(log_subscriber)
    secret = "The spare key is under the blue pot " * 20  # too long: refused
    with caplog.at_level(10, logger="appliance"):
        assert not parts.controls.announce(secret, "api").ok
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "announce"]
    assert line.action == "refused" and line.chars == len(secret)  # type: ignore[attr-defined]
    assert line.getMessage() == (f"announcement ({len(secret)} characters, from api) refused: "
                                 f"text too long ({len(secret.strip())} characters, at most 500)")
    assert "blue pot" not in caplog.text
    assert all("blue pot" not in json.dumps(e.as_dict()) for e in parts.seen)
    assert "blue pot" not in telemetry.metrics_text().decode()


def test_a_flood_of_refusals_is_summed_and_every_one_counted(tmp_path: Path) -> None:
    """A looping automation: one event at once, the rest of the window as one event with its count."""
    parts, telemetry = metered(tmp_path)
    now = [100.0]
    parts.controls._refusals = Refusals(parts.events.publish, every_s=10.0, clock=lambda: now[0])
    for _ in range(20):
        assert not parts.controls.announce("", "mqtt").ok
    assert [(e.action, e.count) for e in parts.announce_events()] == [("refused", None)]
    now[0] += 10.0  # the window is over: the next refusal says what it held first
    assert not parts.controls.announce("x" * 501, "mqtt").ok
    assert [e.count for e in parts.announce_events()] == [None, 19, None]
    held = parts.announce_events()[1]
    assert held.message() == "19 announcements from mqtt refused (the last 0 characters): text is empty"
    assert refused(telemetry, "mqtt") == 21
    assert not parts.controls.announce("", "api").ok  # another source has its own window
    assert refused(telemetry, "api") == 1


async def test_what_a_window_held_is_said_when_it_ends(tmp_path: Path) -> None:
    parts, telemetry = metered(tmp_path)
    parts.controls._refusals = Refusals(parts.events.publish, every_s=0.05)
    for _ in range(3):
        parts.controls.announce("", "homeassistant")
    assert refused(telemetry, "homeassistant") == 1
    await asyncio.sleep(0.2)
    assert [e.count for e in parts.announce_events()] == [None, 2]
    assert refused(telemetry, "homeassistant") == 3
