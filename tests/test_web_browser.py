"""The device page in a real browser (headless Debian chromium through selenium) against
`appliance run` on the test sound card and the fake Realtime server. Screenshots of the page go
to tests/artifacts/ (not committed)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.e2e_support import ApplianceProcess
from tests.web_support import EventClient, web_env, web_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs chromium-driver (scripts/setup.sh --test)"),
]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def chrome_options(*extra: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=420,1000",
                "--disable-gpu", "--mute-audio", *extra):
        options.add_argument(arg)
    return options


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(options=chrome_options(), service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


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


async def test_the_page_follows_a_conversation_and_its_controls_work(
    card: FifoSoundCard, server: FakeRealtimeServer, browser: object
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
        device = driver.find_element("id", "device").text  # type: ignore[attr-defined]
        assert "hey_jarvis" in device and "gpt-realtime" in device
        screenshot(driver, "idle")

        # A conversation by the wake word, seen on the page as it happens.
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
        assert [s for s in ("waking", "listening", "speaking", "idle") if s in seen] == [
            "waking", "listening", "speaking", "idle"], seen
        assert seen.index("listening") < seen.index("speaking") < len(seen) - 1
        wakes = driver.find_element("id", "wakes").text  # type: ignore[attr-defined]
        assert "hey_jarvis" in wakes
        assert "ended: idle_timeout" in driver.find_element("id", "transcript").text  # type: ignore[attr-defined]

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
