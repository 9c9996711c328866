"""Soak: back-to-back conversations against the fake Realtime server with faults mixed in.

In-process appliance (FIFO sound card, MockFactory button, no wake-word model). Each conversation is
started with the button, speaks a tone of its own frequency and, unless its fault ends it first,
hears the answer and is ended with the button. After every conversation: the appliance is idle, a
fault produced exactly one log line naming it, the next conversation works (a fault is always
followed by a clean conversation), and the audio the server received holds only this
conversation's tone. Resources are measured at idle after a warm-up and at the end: RSS, open file
descriptors, threads, asyncio tasks; growth must be flat.

`python -m pytest -m soak --soak-count 200 -s` runs the full count (CI runs the default, 30).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer, ScriptedResponse
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.inproc import EventLog, make_settings, press, running, wait_until

pytestmark = [pytest.mark.soak, pytest.mark.e2e]

BUTTON = 17
MODEL_RATE = 24000
TONES_HZ = (450, 750, 1050, 1350, 1650)
RSS_GROWTH_LIMIT_MB = 10.0
Server = FakeRealtimeServer
Step = Callable[[Server], Awaitable[None]]


def tone(rate: int, hz: float, seconds: float = 0.7, amplitude: int = 6000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)  # no clicks at the ends
    return (amplitude * fade * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def dominant_hz_of_loud_blocks(pcm: bytes, rate: int = MODEL_RATE, block_ms: int = 40) -> list[float]:
    """The strongest frequency of each block loud enough to be speech (silence and gated blocks skipped)."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float32)
    size = rate * block_ms // 1000
    found = []
    for start in range(0, len(samples) - size + 1, size):
        block = samples[start:start + size]
        if np.sqrt(np.mean(block**2)) < 1500:
            continue
        spectrum = np.abs(np.fft.rfft(block * np.hanning(size)))
        found.append(float(np.argmax(spectrum) * rate / size))
    return found


# -- resources ------------------------------------------------------------------------------------
def _trim_heap() -> None:
    """Give freed heap memory back to the system (glibc), so RSS shows what is live, not the
    allocator's high-water mark (one 9 MiB frame lifts it by ~15 MB until the heap is trimmed)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def resources() -> dict[str, float]:
    gc.collect()
    _trim_heap()
    text = Path("/proc/self/status").read_text()
    status = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": int(status["Threads"]),
        "python_threads": threading.active_count(),
        "tasks": len(asyncio.all_tasks()),
    }


# -- faults ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """How a fault is caused and what the log must say about it.

    `before`: done before the button press (the connection fails: no session opens).
    `when`: "listening" (right after the session opens) or "tool" / "speaking" (after the question).
    `event`/`words`: the one log line it must produce. `ends`: it ends the conversation."""

    name: str
    event: str
    words: str
    ends: bool = True
    before: Step | None = None
    during: Step | None = None
    when: str = "listening"
    after: Step | None = None


async def _reject(server: Server) -> None:
    server.reject_connections(401)


async def _accept(server: Server) -> None:
    server.reject_connections(None)


async def _silent(server: Server) -> None:
    server.never_answer(True)


async def _talkative(server: Server) -> None:
    server.never_answer(False)


async def _down(server: Server) -> None:
    await server.stop()


async def _up(server: Server) -> None:
    await server.start()  # the same port: the appliance's URL still points at it


async def _drop(server: Server) -> None:
    await server.drop_connections(abrupt=True)


async def _garbage(server: Server) -> None:
    await server.send_raw("this is not json {")


async def _truncated(server: Server) -> None:
    await server.send_raw('{"type": "response.output_audio.delta", "response_id": "resp_1", "delta": "AAAA')


async def _error_event(server: Server) -> None:
    await server.send_error(message="The server had an error while processing your request.", code="server_error")


async def _rate_limit_event(server: Server) -> None:
    await server.send_error(message="Rate limit reached for gpt-realtime.", code="rate_limit_exceeded",
                            error_type="rate_limit_error")


async def _unknown_event(server: Server) -> None:
    await server.send_event({"type": "response.made_up_event", "detail": 1}, validate=False)


async def _huge_delta(server: Server) -> None:
    await server.send_audio_delta(bytes(9 * 1024 * 1024))  # over the SDK's 8 MiB frame limit once base64'd


async def _failing_response(server: Server) -> None:
    server.script_responses(ScriptedResponse.failing("rate_limit_exceeded"))


FAULTS = [
    Fault("refused_401", "error", "401", before=_reject, after=_accept),
    Fault("connection_refused", "error", "connect_failed", before=_down, after=_up),
    Fault("never_answers", "error", "connect_timeout", before=_silent, after=_talkative),
    Fault("garbage", "error", "JSONDecodeError", during=_garbage),
    Fault("truncated_json", "error", "JSONDecodeError", during=_truncated),
    Fault("drop_mid_answer", "error", "ConnectionClosed", during=_drop, when="speaking"),
    Fault("drop_mid_tool_call", "error", "ConnectionClosed", during=_drop, when="tool"),
    Fault("huge_audio_delta", "error", "1009", during=_huge_delta),
    Fault("error_event", "session_error", "processing your request", ends=False, during=_error_event),
    Fault("rate_limit_event", "session_error", "Rate limit reached", ends=False, during=_rate_limit_event),
    Fault("unknown_event", "session_error", "response.made_up_event", ends=False, during=_unknown_event),
    Fault("rate_limited_response", "session_error", "rate_limit_exceeded", ends=False, before=_failing_response),
]


def warm_up_plan() -> list[Fault | None]:
    huge = next(f for f in FAULTS if f.name == "huge_audio_delta")
    return [None, huge, None, None]


def schedule(count: int, seed: int) -> list[Fault | None]:
    """`count` conversations: every other one a fault (each kind before any repeats), then a clean one."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    while len(faults) < count // 2:
        faults.extend(rng.sample(FAULTS, len(FAULTS)))
    plan: list[Fault | None] = []
    for fault in faults[: count // 2]:
        plan += [fault, None]
    return (plan + [None] * count)[:count]


def forget(server: Server, log: EventLog, card: FifoSoundCard) -> None:
    """Drop what the fake, the log collector and the card recorded, so the test's own memory stays flat."""
    for name in ("connections", "refused_connections", "client_events", "tool_outputs", "function_call_outputs",
                 "function_calls", "session_updates", "truncations", "cancels", "responses", "server_events",
                 "sent_at", "user_turns"):
        getattr(server, name).clear()
    server.received_audio.clear()
    log.records.clear()
    card.clear_speaker()


class Soak:
    def __init__(self, app: Appliance, server: Server, card: FifoSoundCard, button: Any, log: EventLog) -> None:
        self.app, self.server, self.card, self.button, self.log = app, server, card, button, log
        self.problems: list[str] = []

    def states(self) -> list[str]:
        return self.log.states()

    async def idle(self, what: str) -> None:
        await wait_until(lambda: self.app.state.state.value == "idle" and self.app.conversation is None, 20, what,
                         self.log)
        await self.server.wait_for(lambda: self.server.active_connections == 0, 5)

    async def ask(self, hz: float) -> None:
        self.card.say(tone(self.card.rate, hz))

    async def conversation(self, index: int, fault: Fault | None) -> None:
        hz = TONES_HZ[index % len(TONES_HZ)]
        calls_before = len(self.server.function_calls)
        if fault is not None and fault.before is not None:
            await fault.before(self.server)
        await press(self.button)
        if fault is not None and fault.before is not None and fault.ends:
            await wait_until(lambda: bool(self.log.events("error")), 15, f"{fault.name}: the error", self.log)
        else:
            await wait_until(lambda: "listening" in self.states(), 10, f"#{index} session", self.log)
            if fault is not None and fault.when == "listening" and fault.during is not None:
                await fault.during(self.server)
            if fault is None or not fault.ends or fault.when != "listening":
                await self.ask(hz)
            if fault is not None and fault.when == "tool":
                await self.server.wait_for(lambda: len(self.server.function_calls) > calls_before, 10)
                await fault.during(self.server)  # type: ignore[misc]
            elif fault is not None and fault.when == "speaking":
                await wait_until(lambda: "speaking" in self.states(), 15, f"#{index} the answer", self.log)
                await fault.during(self.server)  # type: ignore[misc]
            if fault is None or not fault.ends:
                await self.answered(index, fault)
                await press(self.button)  # end it
        await self.idle(f"#{index} idle again")
        if fault is not None and fault.after is not None:
            await fault.after(self.server)
        self.check(index, fault, hz)

    async def answered(self, index: int, fault: Fault | None) -> None:
        if fault is not None and fault.name == "rate_limited_response":
            # The failed response is the answer: nothing is spoken, the session carries on.
            await wait_until(lambda: bool(self.log.events("session_error")), 15, f"#{index} the failure", self.log)
            await asyncio.sleep(0.2)
            return
        await wait_until(lambda: "speaking" in self.states(), 15, f"#{index} the answer", self.log)
        await wait_until(lambda: self.states()[-1] == "listening", 15, f"#{index} the answer to end", self.log)

    def check(self, index: int, fault: Fault | None, hz: float) -> None:
        name = fault.name if fault else "clean"
        faults = self.log.events("error") + self.log.events("session_error")
        if fault is None:
            if faults:
                self.problems.append(f"#{index} clean conversation logged {[f['message'] for f in faults]}")
            if not self.log.events("conversation_end"):
                self.problems.append(f"#{index} clean conversation did not end normally")
        else:
            lines = [f for f in faults if f["event"] == fault.event and fault.words in f["message"]]
            if len(faults) != 1 or len(lines) != 1:
                self.problems.append(f"#{index} {name}: expected one {fault.event} line with {fault.words!r}, "
                                     f"got {[(f['event'], f['message']) for f in faults]}")
        heard = dominant_hz_of_loud_blocks(bytes(self.server.received_audio))
        strangers = [f for f in heard if abs(f - hz) > 40]
        if strangers:
            self.problems.append(f"#{index} {name}: server got audio at {sorted(set(strangers))[:5]} Hz, not {hz}")
        asked = fault is None or not fault.ends or fault.when != "listening"
        if asked and fault is None and not heard:
            self.problems.append(f"#{index} {name}: the question never reached the server")


async def test_soak(card: FifoSoundCard, mock_pins: object, request: pytest.FixtureRequest) -> None:
    count = int(request.config.getoption("--soak-count"))
    plan = schedule(count, seed=int(os.environ.get("SOAK_SEED", "11")))
    reply = tone(MODEL_RATE, 220, seconds=0.5, amplitude=3000).tobytes()
    async with FakeRealtimeServer(reply_audio=reply, silence_ms_to_end_turn=300) as server:
        settings = make_settings(
            realtime={"url": server.url, "connect_timeout_s": 1.5},
            button={"pin": BUTTON, "bounce_s": 0},
            session={"idle_timeout_s": 30, "error_backoff_s": 0.2, "error_backoff_max_s": 0.5},
            earcons={"wake": False},
        )
        app = Appliance(settings, "sk-soak-not-a-real-key", detector=None)
        button = mock_pins.pin(BUTTON)  # type: ignore[attr-defined]
        # pytest keeps every record that reaches the root logger for its report: over a soak that
        # is the harness's memory, not the appliance's. The soak's own collector sits below it.
        appliance_logger = logging.getLogger("appliance")
        appliance_logger.propagate = False
        async with running(app) as log:
            soak = Soak(app, server, card, button, log)
            await wait_until(lambda: app.audio_ok, 10, "streams open", log)
            # Warm-up: lazy imports and caches, and one over-sized frame (the first 9 MiB frame lifts
            # glibc's mmap threshold for good). Growth is measured from after that.
            for index, fault in enumerate(warm_up_plan()):
                await soak.conversation(-1 - index, fault)
                forget(server, log, card)
            start = resources()
            trace: list[tuple[str, float]] = []  # RSS after each conversation, for the report
            for index, fault in enumerate(plan):
                await soak.conversation(index, fault)
                forget(server, log, card)
                button.clear_states()  # MockPin keeps every change
                if os.environ.get("SOAK_TRACE"):
                    trace.append((fault.name if fault else "clean", round(resources()["rss_mb"], 1)))
                    print("soak-trace", index, *trace[-1], flush=True)
            await asyncio.sleep(0.5)
            end = resources()
    appliance_logger.propagate = True
    figures = {"conversations": count, "faults": sum(f is not None for f in plan), "start": start, "end": end,
               "rss_growth_mb": round(end["rss_mb"] - start["rss_mb"], 2)}
    print("soak", json.dumps(figures))
    assert not soak.problems, "\n".join(soak.problems)
    assert server.errors == [] and server.invalid_events_sent == []
    assert end["rss_mb"] - start["rss_mb"] < RSS_GROWTH_LIMIT_MB, figures
    for kind in ("fds", "threads", "python_threads", "tasks"):
        assert end[kind] <= start[kind], (kind, figures)
