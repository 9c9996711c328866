"""Announcements without devices: the text's checks, the bounded queue, waiting for a conversation or a
ring, mute, dismissal by the button and by `stop`, failures and expiry, and what the log and metrics get."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from appliance.announcements import AnnouncementChanged, Announcer, clean_text
from appliance.announcements import queue as announce_queue
from appliance.button_actions import ButtonActions
from appliance.controls import Ack, Controls
from appliance.events import ApplianceEvent, EventBus, StateChanged, log_subscriber
from appliance.settings import ButtonSettings
from appliance.state import State, StateMachine
from appliance.store import Store
from appliance.telemetry import Telemetry
from appliance.web.commands import MAX_COMMAND_BYTES, run_command
from tests.test_controls import Device, FakeLifecycle


class FakeVoice:
    """Stands in for the Realtime session: records the texts, speaks until released or dismissed."""

    def __init__(self) -> None:
        self.spoken: list[str] = []
        self.chimes = 0
        self.release = asyncio.Event()
        self.fail_with: Exception | None = None

    def chime(self) -> float:
        self.chimes += 1
        return 0.1

    async def speak(self, text: str, dismissed: asyncio.Event) -> bool:
        self.spoken.append(text)
        if self.fail_with is not None:
            raise self.fail_with
        released = asyncio.ensure_future(self.release.wait())
        stop = asyncio.ensure_future(dismissed.wait())
        await asyncio.wait({released, stop}, return_when=asyncio.FIRST_COMPLETED)
        released.cancel()
        stop.cancel()
        self.release.clear()
        return not dismissed.is_set()


class Parts:
    def __init__(self, tmp_path: Path) -> None:
        self.events = EventBus()
        self.seen: list[ApplianceEvent] = []
        self.events.subscribe(self.seen.append)
        self.state = StateMachine(self.events)
        self.host = FakeLifecycle(self.state)
        self.controls = Controls(self.state, self.events, Store(tmp_path), self.host, default_volume=80)
        self.voice = FakeVoice()
        self.audio_ok = True
        self.announcer = Announcer(self.state, self.events, chime=self.voice.chime, speak=self.voice.speak,
                                   ready=lambda: self.audio_ok, rest_state=self.controls.rest_state)
        self.controls.announcer = self.announcer
        self.task: asyncio.Task[None] | None = None

    def actions(self) -> list[str]:
        return [e.action for e in self.seen if isinstance(e, AnnouncementChanged)]

    def announce_events(self) -> list[AnnouncementChanged]:
        return [e for e in self.seen if isinstance(e, AnnouncementChanged)]

    def api(self, **message: Any) -> dict[str, Any]:
        reply, _ = run_command(Device(self.controls), json.dumps(message))  # type: ignore[arg-type]
        return reply


@pytest.fixture
async def parts(tmp_path: Path) -> Any:
    p = Parts(tmp_path)
    p.task = asyncio.create_task(p.announcer.run())
    yield p
    p.task.cancel()
    await asyncio.gather(p.task, return_exceptions=True)


async def until(predicate: Any, what: str, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# -- the text ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "error"), [
    (None, "text must be a string"),
    (42, "text must be a string"),
    (["dinner"], "text must be a string"),
    ("", "text is empty"),
    ("   \n\t ", "text is empty"),
    ("\x00\x1b\x07\u202e", "text is empty"),
    ("x" * 501, "text too long (501 characters, at most 500)"),
    ("x" * 10**6, "text too long (at most 500 characters)"),
])
def test_bad_texts_are_refused_with_a_reason(text: Any, error: str) -> None:
    assert clean_text(text) == (None, error)


def test_control_characters_go_and_whitespace_is_one_space() -> None:
    assert clean_text("  Dinner\x1b[31m is\r\nready\x00!\u202e  ") == ("Dinner[31m is ready!", None)
    assert clean_text("x" * 500) == ("x" * 500, None)
    assert clean_text("Abendessen ist fertig – 晚饭好了") == ("Abendessen ist fertig – 晚饭好了", None)


def test_a_full_length_text_of_any_script_fits_in_a_page_command(tmp_path: Path) -> None:
    p = Parts(tmp_path)
    text = "é" * 500
    assert len(json.dumps({"command": "announce", "text": text})) <= MAX_COMMAND_BYTES
    assert p.api(command="announce", text=text)["ok"] is True


# -- the queue ----------------------------------------------------------------------------------------------
async def test_an_announcement_when_idle_chimes_speaks_and_returns_to_idle(parts: Parts) -> None:
    reply = parts.api(command="announce", text="Dinner is ready")
    assert reply == {"event": "ack", "command": "announce", "ok": True, "announcement": 1, "waiting": 0}
    await until(lambda: parts.state.state == State.ANNOUNCING, "announcing")
    assert parts.voice.spoken == ["Dinner is ready"] and parts.voice.chimes == 1
    assert parts.controls.start().error == "cannot start while announcing"  # one thing at a time
    parts.voice.release.set()
    await until(lambda: parts.state.state == State.IDLE, "idle again")
    assert parts.actions() == ["queued", "started", "done"]
    states = [(e.previous, e.state) for e in parts.seen if isinstance(e, StateChanged)]
    assert states == [("idle", "announcing"), ("announcing", "idle")]


async def test_the_queue_keeps_the_oldest_and_refuses_the_newest(parts: Parts) -> None:
    parts.state.to(State.WAKING)  # busy: nothing starts, everything queues
    acks = [parts.controls.announce(f"number {i}", "mqtt") for i in range(1, 7)]
    assert [a.ok for a in acks] == [True] * 5 + [False]
    assert acks[5] == Ack(False, "5 announcements are already waiting")
    assert [a.values["waiting"] for a in acks[:5]] == [0, 1, 2, 3, 4]
    parts.state.to(State.IDLE)
    for i in range(1, 6):
        await until(lambda i=i: len(parts.voice.spoken) == i, f"number {i}")  # type: ignore[misc]
        parts.voice.release.set()
    await until(lambda: parts.state.state == State.IDLE, "rest")
    assert parts.voice.spoken == [f"number {i}" for i in range(1, 6)]


async def test_it_waits_for_a_conversation_and_a_ring_to_end(parts: Parts) -> None:
    for spoken_before, busy in enumerate((State.WAKING, State.RINGING)):
        parts.state.to(busy)
        assert parts.controls.announce(f"after {busy}", "api").ok
        await asyncio.sleep(4 * announce_queue.CHECK_EVERY_S)
        assert parts.state.state == busy and len(parts.voice.spoken) == spoken_before  # still waiting
        parts.state.to(State.IDLE)
        await until(lambda: parts.state.state == State.ANNOUNCING, "announcing once it rests")
        parts.voice.release.set()
        await until(lambda: parts.state.state == State.IDLE, "rest")
    assert parts.voice.spoken == ["after waking", "after ringing"]


async def test_a_muted_appliance_still_announces_and_stays_muted(parts: Parts) -> None:
    parts.controls.set_muted(True)
    assert parts.controls.announce("The washing is done").ok
    await until(lambda: parts.state.state == State.ANNOUNCING, "announcing")
    parts.voice.release.set()
    await until(lambda: parts.state.state == State.MUTED, "muted again")
    # Mute switched on while it speaks: it ends in muted; off: in idle.
    parts.controls.set_muted(False)
    assert parts.controls.announce("Again").ok
    await until(lambda: parts.state.state == State.ANNOUNCING, "announcing")
    parts.controls.set_muted(True)
    assert parts.state.state == State.ANNOUNCING  # the announcement is not the microphone
    parts.voice.release.set()
    await until(lambda: parts.state.state == State.MUTED, "muted at the end")


async def test_the_button_and_stop_dismiss_the_one_playing_and_the_next_follows(parts: Parts) -> None:
    buttons = ButtonActions(parts.controls, ButtonSettings())
    parts.state.to(State.WAKING)
    for text in ("one", "two", "three"):
        parts.controls.announce(text, "api")
    parts.state.to(State.IDLE)
    await until(lambda: parts.voice.spoken == ["one"], "the first")
    buttons.short_press()
    await until(lambda: parts.voice.spoken == ["one", "two"], "the second after the first's dismissal")
    assert parts.api(command="stop") == {"event": "ack", "command": "stop", "ok": True}
    await until(lambda: parts.voice.spoken == ["one", "two", "three"], "the third")
    buttons.long_press()  # a long press dismisses too (it does not mute)
    await until(lambda: parts.state.state == State.IDLE, "idle")
    assert not parts.controls.muted
    ended = [(e.action, e.by) for e in parts.announce_events() if e.action in ("done", "dismissed")]
    assert ended == [("dismissed", "button"), ("dismissed", "api"), ("dismissed", "button")]
    assert parts.api(command="dismiss")["error"] == "nothing is ringing"
    assert parts.host.begun == []  # no press started a conversation


async def test_a_failed_session_is_logged_and_the_appliance_rests(parts: Parts) -> None:
    parts.voice.fail_with = RuntimeError("connect failed: refused")
    assert parts.controls.announce("Dinner").ok
    await until(lambda: "failed" in parts.actions(), "failed")
    await until(lambda: parts.state.state == State.IDLE, "idle")
    failed = parts.announce_events()[-1]
    assert failed.error == "RuntimeError: connect failed: refused" and failed.level > 20


async def test_lost_audio_ends_it_as_a_failure(parts: Parts) -> None:
    assert parts.controls.announce("Dinner").ok
    await until(lambda: parts.state.state == State.ANNOUNCING, "announcing")
    parts.audio_ok = False
    await until(lambda: "failed" in parts.actions(), "failed")
    assert parts.announce_events()[-1].error == "RuntimeError: the audio devices closed"


async def test_one_that_waited_too_long_expires(parts: Parts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(announce_queue, "MAX_WAIT_S", 0.3)
    parts.state.to(State.WAKING)
    assert parts.controls.announce("Stale").ok
    await until(lambda: "expired" in parts.actions(), "expired", timeout=3)
    parts.state.to(State.IDLE)
    await asyncio.sleep(3 * announce_queue.CHECK_EVERY_S)
    assert parts.voice.spoken == [] and parts.state.state == State.IDLE


def test_without_an_announcer_it_says_so(tmp_path: Path) -> None:
    p = Parts(tmp_path)
    p.controls.announcer = None
    assert p.controls.announce("hi") == Ack(False, "announcements are not available")
    assert p.controls.announce(3) == Ack(False, "text must be a string")  # the text is checked first


# -- what the log, the event stream and the metrics get ----------------------------------------------------
async def test_the_text_is_in_no_log_line_event_or_metric(parts: Parts, caplog: pytest.LogCaptureFixture) -> None:
    parts.events.subscribe(log_subscriber)
    telemetry = Telemetry()
    parts.events.subscribe(telemetry.on_event)
    secret = "The spare key is under the blue pot"
    with caplog.at_level(10, logger="appliance"):
        assert parts.controls.announce(secret, "homeassistant").ok
        await until(lambda: parts.state.state == State.ANNOUNCING, "announcing")
        parts.voice.release.set()
        await until(lambda: parts.state.state == State.IDLE, "idle")
    lines = [r for r in caplog.records if getattr(r, "event", None) == "announce"]
    assert [r.action for r in lines] == ["queued", "started", "done"]  # type: ignore[attr-defined]
    assert all(r.chars == len(secret) and r.source == "homeassistant" for r in lines)  # type: ignore[attr-defined]
    assert secret not in caplog.text
    assert all(secret not in json.dumps(e.as_dict()) for e in parts.seen)
    metrics = telemetry.metrics_text().decode()
    assert 'appliance_announcements_total{action="done",source="homeassistant"} 1.0' in metrics
    assert secret not in metrics
