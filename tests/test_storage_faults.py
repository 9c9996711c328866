"""Storage faults: every write the appliance makes (mute, volume, rung timers, memory, timers,
transcripts) refused by the data directory. The appliance keeps running, shows the state it is
really in (state machine, API acks, log) and writes what it kept once the store takes writes again.

Faults, all real SQLite or filesystem errors: `read_only` (the connection refuses writes, as SQLite
does on a read-only card), `locked` (another process holds the database's write lock), and, where
the tests may mount a tmpfs (root), a data directory that is really read-only at start or full.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import controls as controls_module
from appliance import ringing as ringing_module
from appliance.app import Appliance
from appliance.conversation.tools.errors import ToolFailed
from appliance.conversation.tools.memory import MemoryBook
from appliance.conversation.tools.timers import TimerBook
from appliance.conversation.transcripts import TranscriptWriter
from appliance.events import ConversationEnded, EventBus, TranscriptLine, Wake
from appliance.ringing import TimerRinger
from appliance.state import State, StateMachine
from appliance.store import Store, StoreError, StoreFault
from appliance.testing.fifo_soundcard import FifoSoundCard
from appliance.web.commands import run_command
from tests.inproc import EventLog, make_settings, press, running, wait_until

FAULTS = ("read_only", "locked")


@contextlib.contextmanager
def refusing_writes(store: Store, fault: str) -> Iterator[None]:
    """While inside, every write to `store` fails the way `fault` makes it fail."""
    if fault == "read_only":
        store._db.execute("PRAGMA query_only = ON")  # SQLITE_READONLY, as on a card remounted read-only
        try:
            yield
        finally:
            store._db.execute("PRAGMA query_only = OFF")
    else:
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another process (a backup, a second appliance) holds the lock
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()


@pytest.fixture
def log() -> Iterator[EventLog]:
    handler = EventLog()
    root = logging.getLogger("appliance")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controls_module, "SAVE_RETRY_S", 0.05)
    monkeypatch.setattr(ringing_module, "FINISH_RETRY_S", 0.05)
    monkeypatch.setattr(ringing_module, "CHECK_EVERY_S", 0.02)


def store_errors(log: EventLog) -> list[dict[str, Any]]:
    return [e for e in log.events("error") if e.get("kind") == "store"]


@pytest.mark.parametrize("fault", FAULTS)
async def test_mute_takes_effect_and_says_it_is_unsaved_then_catches_up(
    fault: str, log: EventLog, fast_retries: None
) -> None:
    settings = make_settings()
    app = Appliance(settings, "sk-test", detector=None)
    with refusing_writes(app.store, fault):
        ack, _ = run_command(app, json.dumps({"command": "mute"}))
        # What the API says is what the device does: muted, the wake word ignored, and not saved.
        assert ack == {"event": "ack", "command": "mute", "ok": True, "muted": True, "saved": False}
        assert app.state.state == State.MUTED and app.controls.muted
        assert [e["muted"] for e in log.events("mute")] == [True]
        assert app.controls.start("api").ok is False
        # Later mutes are not no-ops: unmute and mute again both take effect.
        assert app.controls.set_muted(False, "api").values == {"muted": False, "saved": False}
        assert app.state.state == State.IDLE
        assert app.controls.set_muted(True, "button").values == {"muted": True, "saved": False}
        assert app.state.state == State.MUTED
        assert len(store_errors(log)) == 1, "one error for a run of failures, not one per retry"
        assert "not saved" in store_errors(log)[0]["message"]
        saver = asyncio.create_task(app.controls.keep_saving())
        await asyncio.sleep(0.2)  # retries while the store still refuses: still one error, still muted
        assert len(store_errors(log)) == 1 and app.controls.unsaved == ["muted"]
    try:
        await wait_until(lambda: not app.controls.unsaved, 5, "the mute to be saved", log)
    finally:
        saver.cancel()
    assert log.events("store_caught_up")[-1]["keys"] == ["muted"]
    assert Appliance(settings, "sk-test", detector=None).muted is True  # a restart is still muted
    assert app.controls.set_muted(True).values == {"muted": True}


@pytest.mark.parametrize("fault", FAULTS)
async def test_volume_takes_effect_when_unsaved_and_is_written_later(
    fault: str, log: EventLog, fast_retries: None
) -> None:
    settings = make_settings()
    app = Appliance(settings, "sk-test", detector=None)
    with refusing_writes(app.store, fault):
        ack, _ = run_command(app, json.dumps({"command": "volume", "value": 30}))
        assert ack == {"event": "ack", "command": "volume", "ok": True, "volume": 30, "saved": False}
        assert app.controls.volume == 30 and [e["volume"] for e in log.events("volume")] == [30]
        saver = asyncio.create_task(app.controls.keep_saving())
    try:
        await wait_until(lambda: not app.controls.unsaved, 5, "the volume to be saved", log)
    finally:
        saver.cancel()
    assert Appliance(settings, "sk-test", detector=None).volume == 30


def ringer_for(store: Store) -> tuple[TimerRinger, TimerBook, StateMachine]:
    events = EventBus()
    events.subscribe(lambda e: logging.getLogger("appliance").info(e.name, extra={"event": e.name, **e.fields()}))
    state = StateMachine(events)
    book = TimerBook(store, events)
    ringer = TimerRinger(book, state, events, play=lambda: 0.05, ready=lambda: True,
                         rest_state=lambda: State.IDLE, ring_s=30)
    return ringer, book, state


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_ring_that_cannot_be_marked_done_still_ends_and_does_not_ring_again(
    fault: str, tmp_path: Path, log: EventLog, fast_retries: None
) -> None:
    store = Store(tmp_path)
    ringer, book, state = ringer_for(store)
    book.add(60, "bread")
    store.execute("UPDATE timers SET due_at = 0")  # due now
    task = asyncio.create_task(ringer.run())
    try:
        with refusing_writes(store, fault):
            await wait_until(lambda: state.state == State.RINGING, 5, "the ring", log)
            assert ringer.dismiss("button")
            await wait_until(lambda: state.state == State.IDLE, 5, "idle after the dismissal", log)
            assert [(e["action"], e.get("by")) for e in log.events("timer")][1:] == [
                ("rang", None), ("dismissed", "button")]
            await asyncio.sleep(0.3)  # many checks later: the unmarked timer does not ring again
            assert state.state == State.IDLE and "ringing" not in [e["state"] for e in log.events("state")][1:]
            assert [t.label for t in ringer.unfinished] == ["bread"]
            assert len(store_errors(log)) == 1
        await wait_until(lambda: not ringer.unfinished, 5, "the rung timer to be marked done", log)
    finally:
        task.cancel()
    assert book.pending() == [] and book.take_rang() == ["bread"]
    assert log.events("store_caught_up")


@pytest.mark.parametrize("fault", FAULTS)
def test_tools_say_what_was_not_saved(fault: str, tmp_path: Path) -> None:
    store = Store(tmp_path)
    memory, timers = MemoryBook(store), TimerBook(store, EventBus())
    memory.remember("The cat is called Miso")
    timers.add(300, "pasta")
    reason = "read-only" if fault == "read_only" else "locked"
    with refusing_writes(store, fault):
        with pytest.raises(ToolFailed, match=f"nothing was remembered: .*{reason}"):
            memory.remember("Anna is vegetarian")
        with pytest.raises(ToolFailed, match=f"nothing was forgotten: .*{reason}"):
            memory.forget_matching("Miso")
        with pytest.raises(ToolFailed, match=f"the timer was not set: .*{reason}"):
            timers.add(60, "eggs")
        with pytest.raises(ToolFailed, match=f"no timer was cancelled, they still run: .*{reason}"):
            timers.cancel("pasta")
        assert timers.take_rang() == []  # reading still works
    # Nothing half-done, and the store takes writes again at once (no transaction left open).
    assert [f.text for f in memory.facts()] == ["The cat is called Miso"]
    assert [t.label for t in timers.pending()] == ["pasta"]
    memory.remember("Anna is vegetarian")
    assert [t.label for t in timers.cancel("pasta")] == ["pasta"]


def test_the_rang_list_that_cannot_be_cleared_is_told_again_rather_than_failing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    book = TimerBook(store, EventBus())
    book.finish([book.add(60, "bread")])
    with refusing_writes(store, "read_only"):
        assert book.take_rang() == ["bread"]
    assert book.take_rang() == ["bread"] and book.take_rang() == []


def test_a_store_fault_names_the_cause(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with refusing_writes(store, "locked"), pytest.raises(StoreFault, match="locked by another process"):
        store.put("volume", 10)
    store.put("volume", 10)
    assert store.get("volume") == 10


def conversation(writer: TranscriptWriter, text: str) -> None:
    writer.on_event(Wake(source="button"))
    writer.on_event(TranscriptLine(role="user", text=text))
    writer.on_event(ConversationEnded(reason="button", duration_s=1.0, connect_ms=1.0, sent_audio_ms=1,
                                      dropped_blocks=0, wake_to_open_ms=1.0))


def test_transcripts_survive_a_data_directory_that_refuses_them(tmp_path: Path, log: EventLog) -> None:
    writer = TranscriptWriter(tmp_path, retention_days=30, retention_mb=10)
    (tmp_path / "transcripts").write_text("")  # the directory cannot be made
    conversation(writer, "what time is it")
    assert len(log.events("transcript_write_failed")) == 1
    assert not log.events("event subscriber failed") and not [r for r in log.records if r.get("exc_info")]
    (tmp_path / "transcripts").unlink()
    conversation(writer, "and the weather")  # the next conversation is written again
    (written,) = (tmp_path / "transcripts").glob("*.jsonl")
    assert "and the weather" in written.read_text()


class Detection:
    model = "hey_jarvis"
    score = 0.97
    verifier_score = None


@pytest.mark.e2e
async def test_a_running_appliance_muted_by_the_button_on_a_refusing_store_ignores_the_wake_word(
    card: FifoSoundCard, mock_pins: object, fast_retries: None
) -> None:
    settings = make_settings(button={"pin": 17, "bounce_s": 0, "hold_s": 0.3})
    app = Appliance(settings, "sk-test", detector=None)
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams open", log)
        with refusing_writes(app.store, "read_only"):
            await press(mock_pins.pin(17), hold_s=0.5)  # type: ignore[attr-defined]
            await wait_until(lambda: app.state.state == State.MUTED, 5, "muted", log)
            app.controls.wake_word(Detection())  # type: ignore[arg-type]
            await asyncio.sleep(0.3)
            assert app.state.state == State.MUTED and not log.events("wake")
            assert b'appliance_errors_total{kind="store"} 1.0' in app.telemetry.metrics_text()
            assert app.controls.unsaved == ["muted"]
        await wait_until(lambda: not app.controls.unsaved, 5, "the mute to be saved", log)  # the run's retries
    assert Appliance(settings, "sk-test", detector=None).muted is True


# -- a real filesystem: a tmpfs the test mounts (root only; skipped elsewhere) -------------------
@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "mnt"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True, capture_output=True)


def fill(mount: Path) -> None:
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


async def test_a_data_directory_read_only_at_start_runs_on_what_it_holds_and_catches_up(
    tmpfs: Path, log: EventLog, fast_retries: None
) -> None:
    settings = make_settings(data_dir=str(tmpfs / "data"))
    first = Appliance(settings, "sk-test", detector=None)
    first.controls.set_muted(True, "button")
    first.timers.add(300, "pasta")
    first.store.close()
    remount(tmpfs, "ro")
    # Before: the "damaged database" path tried to move the file aside and raised OSError (EROFS).
    app = Appliance(settings, "sk-test", detector=None)
    assert app.store.read_only and app.controls.muted and [t.label for t in app.timers.pending()] == ["pasta"]
    assert log.events("store_read_only")
    assert app.controls.set_volume(40).values == {"volume": 40, "saved": False}
    with pytest.raises(ToolFailed, match="read-only"):
        app.timers.add(60, "eggs")
    remount(tmpfs, "rw")
    saver = asyncio.create_task(app.controls.keep_saving())
    try:
        await wait_until(lambda: not app.controls.unsaved, 5, "the volume to be saved", log)
    finally:
        saver.cancel()
    assert not app.store.read_only and log.events("store_writable")
    app.store.close()
    again = Store(tmpfs / "data")
    assert again.get("volume") == 40 and again.get("muted") is True
    again.close()


async def test_a_full_data_directory_never_makes_mute_lie(tmpfs: Path, log: EventLog, fast_retries: None) -> None:
    settings = make_settings(data_dir=str(tmpfs / "data"), transcripts={"enabled": True})
    app = Appliance(settings, "sk-test", detector=None)
    fill(tmpfs)
    for turn in range(12):  # some writes still fit in the database's journal, most do not
        muted = turn % 2 == 0
        ack, _ = run_command(app, json.dumps({"command": "mute" if muted else "unmute"}))
        assert ack["ok"] and ack["muted"] is muted
        assert app.state.state == (State.MUTED if muted else State.IDLE)
    assert store_errors(log) and "full" in store_errors(log)[0]["message"]
    assert app.transcripts is not None
    conversation(app.transcripts, "a conversation on a full card")
    assert log.events("transcript_write_failed") and not [r for r in log.records if r.get("exc_info")]
    (tmpfs / "filler").unlink()
    saver = asyncio.create_task(app.controls.keep_saving())
    try:
        await wait_until(lambda: not app.controls.unsaved, 5, "the mute to be saved", log)
    finally:
        saver.cancel()
    app.store.close()
    assert Store(tmpfs / "data").get("muted") is False  # the last command, unmute, is what was kept


def test_a_damaged_database_on_a_read_only_directory_is_a_clear_error(tmpfs: Path) -> None:
    data = tmpfs / "data"
    data.mkdir()
    (data / "appliance.db").write_bytes(b"not a database" * 100)
    remount(tmpfs, "ro")
    with pytest.raises(StoreError, match="is damaged .* cannot be moved aside: Read-only file system"):
        Store(data)


def test_memory_commands_on_a_read_only_data_directory_say_so_without_a_traceback(tmpfs: Path) -> None:
    data = tmpfs / "data"
    store = Store(data)
    MemoryBook(store).remember("Anna is vegetarian")
    store.close()
    remount(tmpfs, "ro")
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(data)}
    listed = subprocess.run([sys.executable, "-m", "appliance", "memory", "list"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "Anna is vegetarian" in listed.stdout
    for action in (["clear"], ["forget", "1"]):
        # Before: a StoreFault traceback (exit 1 from the interpreter, the SQL error as its last line).
        done = subprocess.run([sys.executable, "-m", "appliance", "memory", *action], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert "error: nothing was changed: the data directory is read-only" in done.stderr, done.stderr
    assert [f.text for f in MemoryBook(Store(data)).facts()] == ["Anna is vegetarian"]
