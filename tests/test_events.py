"""The event stream's contract: an event's log line carries exactly its name and fields."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from appliance.events import (
    ApplianceEvent,
    ErrorRaised,
    EventBus,
    MicBlockFailed,
    ToolCalled,
    Wake,
    WakeIgnored,
    log_subscriber,
)
from appliance.logs import JsonFormatter


def logged(event: ApplianceEvent, caplog: pytest.LogCaptureFixture) -> dict[str, object]:
    with caplog.at_level(logging.DEBUG):
        log_subscriber(event)
    line = json.loads(JsonFormatter().format(caplog.records[-1]))
    return {k: v for k, v in line.items() if k != "ts"}


def test_error_line_has_kind_and_retry_and_the_text_as_message(caplog: pytest.LogCaptureFixture) -> None:
    line = logged(ErrorRaised(kind="connect_failed", retry_in_s=2.0, text="connect_failed: 401"), caplog)
    assert line == {"level": "error", "logger": "appliance", "event": "error", "kind": "connect_failed",
                    "retry_in_s": 2.0, "msg": "connect_failed: 401"}


def test_unset_optional_fields_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    assert logged(Wake(source="button"), caplog) == {"level": "info", "logger": "appliance", "event": "wake",
                                                      "source": "button", "msg": "wake by button"}
    line = logged(Wake(source="wakeword", model="hey_jarvis", score=0.9, barge_in=True), caplog)
    assert line["barge_in"] is True and line["msg"] == "wake word during answer: barge-in"
    assert "verifier_score" not in line


def test_extra_fields_are_flattened_into_the_line() -> None:
    event = ToolCalled(tool="set_timer", extra={"label": "pasta", "seconds": 540})
    assert event.as_dict() == {"event": "tool", "tool": "set_timer", "label": "pasta", "seconds": 540}


async def test_publish_from_another_thread_is_delivered_on_the_loop_thread() -> None:
    import asyncio

    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    delivered_on: list[int] = []
    bus.subscribe(lambda _e: delivered_on.append(threading.get_ident()))
    worker = threading.Thread(target=bus.publish, args=(Wake(source="button"),))
    worker.start()
    worker.join()
    assert delivered_on == []  # not run on the worker thread
    await asyncio.sleep(0.01)
    assert delivered_on == [threading.get_ident()]


def test_an_event_published_while_the_loop_closes_is_still_delivered() -> None:
    """The microphone worker can publish in the instant the loop closes (shutdown): `is_closed()` still
    said no, `call_soon_threadsafe` raises. The event is delivered in place, not lost, not raised."""

    class ClosingLoop:
        def is_closed(self) -> bool:
            return False

        def call_soon_threadsafe(self, *args: object) -> None:
            raise RuntimeError("Event loop is closed")

    bus = EventBus()
    bus.bind_loop(ClosingLoop())  # type: ignore[arg-type]
    got: list[ApplianceEvent] = []
    bus.subscribe(got.append)
    event = MicBlockFailed(error="MemoryError", text="simulated")
    worker = threading.Thread(target=bus.publish, args=(event,))
    worker.start()
    worker.join()
    assert got == [event]


def test_pipeline_events_keep_their_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    line = logged(MicBlockFailed(error="MemoryError", text="simulated"), caplog)
    assert line == {"level": "error", "logger": "appliance.audio.pipeline", "event": "pipeline_error",
                    "error": "MemoryError", "msg": "microphone processing failed: MemoryError: simulated"}
    assert MicBlockFailed(error="MemoryError", text="/secret/path").as_dict() == {
        "event": "pipeline_error", "error": "MemoryError"}  # the exception's text stays in the log
    line = logged(WakeIgnored(reason="played_audio", model="hey_jarvis", score=0.91), caplog)
    assert line == {"level": "info", "logger": "appliance", "event": "wake_ignored", "reason": "played_audio",
                    "model": "hey_jarvis", "score": 0.91, "msg": "wake word in what the speaker played: ignored"}
