"""Running the Appliance inside the test's own event loop (for MockFactory pins and fault injection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from appliance.app import Appliance
from appliance.settings import Settings


class EventLog(logging.Handler):
    """Collects the structured log events the appliance emits."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = {k: v for k, v in vars(record).items() if k not in ("args", "msg", "exc_info", "exc_text")}
        fields["message"] = record.getMessage()
        self.records.append(fields)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == event]

    def states(self) -> list[str]:
        return [r["state"] for r in self.events("state")]


def make_settings(**env: Any) -> Settings:
    base: dict[str, Any] = {
        "openai_api_key": "sk-test-not-a-real-key",
        "audio": {"input_device": "mic", "output_device": "speaker", "input_rate": 48000, "output_rate": 48000},
        "session": {"idle_timeout_s": 2, "error_backoff_s": 0.3, "error_backoff_max_s": 1},
        "health": {"enabled": False},
        # A fresh data directory per appliance: mute and volume persist, and must not leak between tests.
        "data_dir": tempfile.mkdtemp(prefix="appliance-data-"),
    }
    for group, values in env.items():
        if isinstance(values, dict):
            base.setdefault(group, {}).update(values)
        else:
            base[group] = values
    return Settings(**base)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str, log: EventLog | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = "" if log is None else "\n" + "\n".join(r["message"] for r in log.records[-20:])
            raise AssertionError(f"timed out waiting for {what}{tail}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(app: Appliance) -> AsyncIterator[EventLog]:
    log = EventLog()
    root = logging.getLogger("appliance")
    root.addHandler(log)
    root.setLevel(logging.INFO)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        yield log
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        root.removeHandler(log)


async def press(pin: Any, hold_s: float = 0.05) -> None:
    """Press and release a MockFactory button pin (active low)."""
    pin.drive_low()
    await asyncio.sleep(hold_s)
    pin.drive_high()


async def start_and_ask(app: Appliance, log: EventLog, card: Any, button: Any, question: Any) -> None:
    """Wait for the streams, start a conversation with the button, ask, and wait for the answer."""
    await wait_until(lambda: app.audio_ok, 10, "streams open", log)
    await press(button)
    await wait_until(lambda: "listening" in log.states(), 10, "the session to open", log)
    card.say(question)
    await wait_until(lambda: "speaking" in log.states(), 20, "the answer", log)
