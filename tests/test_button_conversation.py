"""Button-started conversations in-process: gpiozero MockFactory pins, the FIFO sound card, the real
Agents SDK against the fake Realtime server. LEDs are read back from the mock pins' history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import soxr

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, best_match, read_wav, trim_silence
from tests.inproc import make_settings, press, running, wait_until

pytestmark = pytest.mark.e2e

BUTTON, RED, GREEN, BLUE = 17, 5, 6, 13


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    reply = read_wav(FIXTURES / "reply_24k.wav", 24000)
    async with FakeRealtimeServer(handshake_delay_s=0.3, reply_audio=reply.tobytes()) as srv:
        yield srv


def steady_colours(pins: dict[str, object], min_s: float = 0.03) -> list[tuple[int, int, int]]:
    """The RGB colours shown for at least `min_s`, in time order (setting a colour touches the three
    pins one after the other, so the in-between combinations last microseconds and are skipped).
    MockPin records each change as the time since the previous one, from `clear_states()`."""
    changes = []
    for name, pin in pins.items():
        at = 0.0
        for s in pin.states:  # type: ignore[attr-defined]
            at += s.timestamp
            changes.append((at, name, int(s.state)))
    changes.sort()
    current = {"r": 0, "g": 0, "b": 0}
    timeline: list[tuple[float, tuple[int, int, int]]] = []
    for at, name, state in changes:
        current[name] = state
        timeline.append((at, (current["r"], current["g"], current["b"])))
    timeline.append((float("inf"), timeline[-1][1]))
    steady: list[tuple[int, int, int]] = []
    for (at, colour), (next_at, _) in zip(timeline, timeline[1:], strict=False):
        if next_at - at >= min_s and (not steady or steady[-1] != colour):
            steady.append(colour)
    return steady


def is_subsequence(wanted: list[tuple[int, int, int]], seen: list[tuple[int, int, int]]) -> bool:
    it = iter(seen)
    return all(colour in it for colour in wanted)


async def test_button_starts_and_ends_a_conversation_with_leds(
    card: FifoSoundCard, server: FakeRealtimeServer, mock_pins: object
) -> None:
    settings = make_settings(
        realtime={"url": server.url},
        button={"pin": BUTTON, "bounce_s": 0},
        leds={"red_pin": RED, "green_pin": GREEN, "blue_pin": BLUE},
        session={"idle_timeout_s": 30},
    )
    app = Appliance(settings, "sk-test", detector=None)
    factory = mock_pins
    button = factory.pin(BUTTON)  # type: ignore[attr-defined]
    pins = {"r": factory.pin(RED), "g": factory.pin(GREEN), "b": factory.pin(BLUE)}  # type: ignore[attr-defined]
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams open", log)
        for pin in pins.values():
            pin.clear_states()
        await press(button)
        await wait_until(lambda: "listening" in log.states(), 10, "the session to open", log)
        card.say(read_wav(FIXTURES / "what_time_only.wav", card.rate))
        await wait_until(lambda: "speaking" in log.states(), 20, "the answer", log)
        await wait_until(lambda: log.states()[-1] == "listening", 20, "the answer to finish", log)
        await press(button)
        await wait_until(lambda: log.states()[-1] == "idle", 10, "idle", log)

    wakes = log.events("wake")
    assert [w["source"] for w in wakes] == ["button"]
    ends = log.events("conversation_end")
    assert ends and ends[0]["reason"] == "button"
    states = log.states()
    assert states[:3] == ["waking", "connecting", "listening"]
    assert "thinking" in states and "speaking" in states and states[-1] == "idle"
    # LEDs: listening is blue, speaking green, back to off at idle (blinks for waking/connecting).
    colours = steady_colours(pins)
    blue, green, off = (0, 0, 1), (0, 1, 0), (0, 0, 0)
    # connecting blinks blue, listening is blue, speaking green, listening again, then off at idle.
    # (waking and thinking pass in milliseconds against the local fake: too short to see here.)
    assert is_subsequence([off, blue, off, blue, green, blue, off], colours), colours
    assert colours[-1] == off
    assert server.tool_outputs
    heard = soxr.resample(card.speaker_audio(), card.rate, 24000)
    score, _ = best_match(heard, read_wav(FIXTURES / "reply_24k.wav", 24000))
    assert score >= 0.95


async def test_push_to_talk_commits_on_release(
    card: FifoSoundCard, server: FakeRealtimeServer, mock_pins: object
) -> None:
    settings = make_settings(
        realtime={"url": server.url},
        button={"pin": BUTTON, "bounce_s": 0, "mode": "hold"},
        earcons={"wake": False},
        session={"idle_timeout_s": 3},
    )
    app = Appliance(settings, "sk-test", detector=None)
    button = mock_pins.pin(BUTTON)  # type: ignore[attr-defined]
    question = read_wav(FIXTURES / "what_time_only.wav", card.rate)
    async with running(app) as log:
        await wait_until(lambda: app.audio_ok, 10, "streams open", log)
        button.drive_low()
        await asyncio.sleep(0.1)
        card.say(question)
        card.wait_said(15)
        button.drive_high()
        await wait_until(lambda: "speaking" in log.states(), 20, "the answer", log)
        await wait_until(lambda: log.states()[-1] == "idle", 20, "idle after the timeout", log)

    types = [e["type"] for e in server.client_events]
    assert "input_audio_buffer.commit" in types
    assert types.index("response.create") > types.index("input_audio_buffer.commit")
    update = next(e for e in server.client_events if e["type"] == "session.update")
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    received = np.frombuffer(bytes(server.received_audio), dtype=np.int16)
    score, _ = best_match(received, trim_silence(read_wav(FIXTURES / "what_time_only.wav", 24000)))
    assert score >= 0.8, (len(received) / 24000, [(t["start_ms"], t["end_ms"]) for t in server.user_turns],
                          types[:12])
