"""The device page in a real browser (headless Debian chromium through selenium) against
`appliance run` on the test sound card and the fake Realtime server. Screenshots of the page go
to tests/artifacts/ (not committed); the one in docs/device-page.md is taken here too, checked on
every run and written to docs/images/device-page.png with UPDATE_DOCS_SCREENSHOT=1."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import time
import wave
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, best_match, read_wav, trim_silence
from tests.e2e_support import ApplianceProcess
from tests.web_support import EventClient, chrome_options, web_env, web_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs chromium-driver (scripts/setup.sh --test)"),
]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "device-page.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    reply = read_wav(FIXTURES / "reply_24k.wav", 24000)
    async with FakeRealtimeServer(reply_audio=reply.tobytes()) as srv:
        yield srv


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.03)


def page_state(driver) -> str:  # type: ignore[no-untyped-def]
    return str(driver.find_element("tag name", "body").get_attribute("data-state"))


def screenshot(driver, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"page-{name}.png"
    driver.save_screenshot(str(path))
    return path


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0], kind
        yield kind, body
        at += 12 + length


def png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """Width, height and how many distinct byte values its pixel rows hold (a blank page: a handful)."""
    chunks = list(png_chunks(data))
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height = struct.unpack(">II", chunks[0][1][:8])
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    return width, height, len(set(pixels))


def docs_screenshot(driver, path: Path, docs: Path = DOCS_SCREENSHOT) -> None:  # type: ignore[no-untyped-def]
    """The page as docs/device-page.md shows it: written to `path` and checked to be a whole PNG of
    the page's viewport with something drawn on it; copied to `docs` when asked to."""
    png = driver.get_screenshot_as_png()
    path.write_bytes(png)
    width, height, colours = png_size_and_colours(png)
    view = driver.execute_script("return [window.innerWidth, window.innerHeight, window.devicePixelRatio];")
    assert (width, height) == (round(view[0] * view[2]), round(view[1] * view[2])), (width, height, view)
    assert colours > 32, f"the screenshot looks blank ({colours} distinct byte values)"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        docs.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, docs)


def test_png_checks_refuse_a_broken_or_blank_image() -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\xff" * 3 * 4 for _ in range(2))  # 4 x 2 white RGB pixels
    blank = PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 2, 8, 2, 0, 0, 0)) + chunk(
        b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    assert png_size_and_colours(blank) == (4, 2, 2)
    with pytest.raises(AssertionError):
        png_size_and_colours(blank[:23] + bytes([blank[23] ^ 1]) + blank[24:])  # the height's bit flipped: bad CRC
    with pytest.raises(AssertionError, match="not a PNG"):
        png_size_and_colours(b"GIF89a" + blank[6:])


async def test_the_page_follows_a_conversation_and_its_controls_work(
    card: FifoSoundCard, server: FakeRealtimeServer, browser: object, tmp_path: Path
) -> None:
    driver = browser
    app = await ApplianceProcess(web_env(card.env, server.url)).start()
    try:
        await app.wait_ready()
        port = await web_port(app)
        watcher = await EventClient.open(port)
        driver.get(f"http://127.0.0.1:{port}/")  # type: ignore[attr-defined]
        await until(lambda: page_state(driver) == "idle", 20, "the page to show idle")
        assert driver.find_element("id", "state").text.lower() == "idle"  # type: ignore[attr-defined]
        # On loopback without a token the page asks for none.
        assert not driver.find_element("id", "login").is_displayed()  # type: ignore[attr-defined]
        # Browser talk is off unless enabled.
        assert not driver.find_element("id", "browser-talk").is_displayed()  # type: ignore[attr-defined]
        device = driver.find_element("id", "device").text  # type: ignore[attr-defined]
        assert "hey_jarvis" in device and "gpt-realtime" in device
        screenshot(driver, "idle")

        # A conversation by the wake word, seen on the page as it happens (every change of the
        # page's state is recorded in the page, since short states pass between two polls).
        driver.execute_script(  # type: ignore[attr-defined]
            "window.seenStates = [];"
            "new MutationObserver(() => window.seenStates.push(document.body.dataset.state))"
            ".observe(document.body, {attributes: true, attributeFilter: ['data-state']});"
        )
        seen: list[str] = []
        shots: set[str] = set()
        card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
        deadline = time.monotonic() + 60
        while not (seen and seen[-1] == "idle" and "speaking" in seen) and time.monotonic() < deadline:
            state = page_state(driver)
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in ("listening", "speaking") and state not in shots:
                screenshot(driver, state)
                shots.add(state)
            await asyncio.sleep(0.03)
        recorded = driver.execute_script("return window.seenStates;")  # type: ignore[attr-defined]
        assert [s for s in ("waking", "connecting", "listening", "speaking", "idle") if s in recorded] == [
            "waking", "connecting", "listening", "speaking", "idle"], recorded
        assert recorded.index("waking") < recorded.index("listening") < recorded.index("speaking"), recorded
        assert recorded[-1] == "idle", recorded
        wakes = driver.find_element("id", "wakes").text  # type: ignore[attr-defined]
        assert "hey_jarvis" in wakes
        assert "ended: idle_timeout" in driver.find_element("id", "transcript").text  # type: ignore[attr-defined]
        # The page after a conversation (its state, transcript, tool call and wake score): the docs' picture.
        docs_screenshot(driver, tmp_path / "device-page.png")

        # The volume slider: the appliance takes the new value (every client is told).
        driver.execute_script(  # type: ignore[attr-defined]
            "const v = document.getElementById('volume'); v.value = 30;"
            "v.dispatchEvent(new Event('input')); v.dispatchEvent(new Event('change'));"
        )
        await watcher.wait_for(lambda: {"event": "volume", "volume": 30} in watcher.messages, 10, "volume 30")
        assert driver.find_element("id", "volume-value").text == "30"  # type: ignore[attr-defined]

        # Mute: the page shows it and the wake word is ignored.
        driver.find_element("id", "mute").click()  # type: ignore[attr-defined]
        await until(lambda: page_state(driver) == "muted", 10, "muted on the page")
        assert driver.find_element("id", "mute").text == "Unmute"  # type: ignore[attr-defined]
        screenshot(driver, "muted")
        card.say(read_wav(FIXTURES / "hey_jarvis_what_time.wav", card.rate))
        card.wait_said(30)
        await asyncio.sleep(1.0)
        assert len(app.events("wake")) == 1
        driver.find_element("id", "mute").click()  # type: ignore[attr-defined]
        await until(lambda: page_state(driver) == "idle", 10, "unmuted")

        # The talk button starts a conversation, and stops it.
        driver.find_element("id", "talk").click()  # type: ignore[attr-defined]
        await until(lambda: page_state(driver) == "listening", 30, "listening after Talk")
        assert driver.find_element("id", "talk").text == "Stop"  # type: ignore[attr-defined]
        driver.find_element("id", "talk").click()  # type: ignore[attr-defined]
        await until(lambda: page_state(driver) == "idle", 20, "idle after Stop")
        await watcher.close()
    finally:
        rc = await app.stop()
    assert rc == 0, app.dump()
    assert app.events("conversation_end")[-1]["reason"] == "api"
    assert {"idle", "listening", "speaking"} <= shots | {"idle"}


def speech_wav(path: Path) -> np.ndarray:
    """What the browser's fake microphone says: "what time is it" between silences (48 kHz)."""
    speech = trim_silence(read_wav(FIXTURES / "what_time_only.wav", 48000))
    silence = np.zeros(48000, dtype=np.int16)
    samples = np.concatenate([silence, speech, silence, silence])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(samples.tobytes())
    return speech


async def test_talk_from_this_browser_with_an_ephemeral_key(card: FifoSoundCard, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    key = "sk-test-not-a-real-key"
    # A few seconds of answer, so "speaking" lasts longer than the test's poll of the page under load.
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", 24000), 4)
    speech = speech_wav(tmp_path / "browser-mic.wav")
    assert speech.size > 0
    options = chrome_options(
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={tmp_path / 'browser-mic.wav'}",
        "--autoplay-policy=no-user-gesture-required",
    )
    async with FakeRealtimeServer(reply_audio=reply.tobytes(), api_key=key) as server:
        env = web_env(card.env, server.url, APPLIANCE_WEB__BROWSER_TALK="true", OPENAI_API_KEY=key)
        app = await ApplianceProcess(env).start()
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        try:
            await app.wait_ready()
            port = await web_port(app)
            driver.get(f"http://127.0.0.1:{port}/")
            await until(lambda: page_state(driver) == "idle", 20, "the page")
            button = driver.find_element("id", "browser-talk-button")
            assert button.is_displayed()
            button.click()
            status = lambda: driver.find_element("id", "browser-talk-status").text  # noqa: E731
            await until(lambda: status() not in ("", "connecting…"), 30, "browser talk to connect")
            assert not status().startswith("could not"), status()
            # The browser's speech reaches the server as a user turn, and the answer comes back.
            await server.wait_for(lambda: len(server.user_turns) >= 1, 30)
            await until(lambda: status() == "speaking", 30, "the answer to play in the browser")
            screenshot(driver, "browser-talk")
            driver.find_element("id", "browser-talk-button").click()
            await server.wait_for(lambda: server.active_connections == 0, 10)
        finally:
            driver.quit()
            rc = await app.stop()
    assert rc == 0, app.dump()
    # The appliance asked for the secret with its own key and the device's instructions and voice...
    granted = [r for r in server.client_secret_requests if r.status == 200]
    assert len(granted) == 1
    session = granted[0].body["session"]
    assert session["audio"]["output"]["voice"] == "ash" and session["instructions"]
    # ...and the browser connected with the ephemeral key, never the appliance's own.
    browser = [c for c in server.connections if c["key_kind"] == "client_secret"]
    assert len(browser) == 1 and browser[0]["auth"] == "subprotocol"
    assert browser[0]["client_secret"] == granted[0].value
    assert key not in str(browser[0]["headers"])
    assert key not in app.all_output() and granted[0].value not in app.all_output()
    # What the fake microphone said is what the server heard.
    # (Only the browser sent audio in this test: everything the server received is the browser's.)
    heard = np.frombuffer(bytes(server.received_audio), dtype=np.int16)
    score, _ = best_match(heard, trim_silence(read_wav(FIXTURES / "what_time_only.wav", 24000)))
    assert score >= 0.7, f"the browser's speech not found in what the server received (corr {score:.2f})"
    assert not server.invalid_events_sent and not server.errors
    # The browser ran the device's time tool itself and sent its answer back.
    assert server.tool_outputs and str(time.localtime().tm_year) in server.tool_outputs[0]["output"]


async def test_the_page_shows_transcript_handoff_and_timer_events(browser: object) -> None:
    """The agent's events, as the agent layer publishes them (role/text, from/to, label/action): the
    server is in-process, so the browser is driven from a thread while the loop serves it."""

    from appliance.events import HandedOff, StateChanged, TimerChanged, TranscriptLine
    from tests.test_web_server import running, settings

    driver = browser
    async with running(settings()) as (appliance, server):
        await asyncio.to_thread(driver.get, f"http://127.0.0.1:{server.port}/")  # type: ignore[attr-defined]

        def text(element: str) -> str:
            return str(driver.find_element("id", element).text)  # type: ignore[attr-defined]

        async def shown(element: str, words: str) -> None:
            deadline = time.monotonic() + 20
            while words not in await asyncio.to_thread(text, element):
                assert time.monotonic() < deadline, f"{words!r} not shown in #{element}"
                await asyncio.sleep(0.05)

        await shown("state", "Idle")
        bus = appliance.events
        bus.publish(StateChanged(state="waking", previous="idle", source="api"))
        bus.publish(TranscriptLine(role="user", text="set a timer for five minutes"))
        bus.publish(HandedOff(from_agent="Assistant", to_agent="Kitchen"))
        bus.publish(TimerChanged(action="set", label="pasta", seconds=300.0))
        bus.publish(TranscriptLine(role="assistant", text="Five minutes, starting now.", agent="Kitchen"))
        await shown("transcript", "Five minutes, starting now.")
        items = await asyncio.to_thread(
            driver.execute_script,  # type: ignore[attr-defined]
            "return [...document.querySelectorAll('#transcript li')]"
            ".map(li => [li.className, li.dataset.agent || '', li.textContent]);",
        )
    assert items == [
        ["note", "", "conversation started by api"],
        ["user", "", "set a timer for five minutes"],
        ["note", "", "handoff: Assistant → Kitchen"],
        ["note", "", 'timer "pasta" set (300 s)'],
        ["assistant", "Kitchen", "Five minutes, starting now."],
    ], items
