"""The device page's "Wake word" section in a real browser (headless chromium through selenium):
the enrolled voices, "Teach it my voice" and its guided takes. The page server is the real one,
in-process; its event bus is fed the device's enrolment events, and a recording device answers the
enrolment commands (enroll, profiles, forget_profile) as the appliance does, so what the page sends
is observed where the appliance receives it. The browser is driven from a thread while the loop
serves it."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from appliance.enrolment_events import ProfileForgotten
from appliance.events import ApplianceEvent, StateChanged
from appliance.web import routes
from appliance.web.commands import ack
from appliance.web.server import WebServer
from tests.test_web_browser import ARTIFACTS, DOCS_SCREENSHOT, docs_screenshot
from tests.test_web_server import running, settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs chromium-driver (scripts/setup.sh --test)"),
]

ENROLMENT_SCREENSHOT = DOCS_SCREENSHOT.with_name("device-page-enrolment.png")
HOSTILE = '<img src=x onerror="window.pwned=1">Ana<b>'


@dataclass(frozen=True, kw_only=True)
class DeviceEvent(ApplianceEvent):
    """An event as the device's enrolment publishes it, by its wire name and fields."""

    wire: str
    payload: dict[str, Any]

    def fields(self) -> dict[str, Any]:
        return {}  # the log line stays bare: a `name` field would clash with the LogRecord's own

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.wire, **self.payload}


@dataclass
class EnrolmentDevice:
    """The device's side of the enrolment commands: records every command the page sends and answers
    enroll, stop, profiles and forget_profile as an enrolling appliance does, with its own list of
    voices (the other commands go to the real handler). A forgotten voice is published to every
    client before the ack, as `Controls.forget_profile` does."""

    profiles: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    publish: Callable[[ApplianceEvent], None] = lambda event: None

    def run(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def run_command(device: Any, text: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
            message = json.loads(text)
            self.commands.append(message)
            command = message.get("command")
            if command == "enroll" and any(p["name"] == message.get("name") for p in self.profiles):
                return ack(command, False, f"{message['name']} is already enrolled"), None
            if command in ("enroll", "stop"):  # stop: the enrolment under way ends (enrol_failed follows)
                return ack(command, True), None
            if command == "profiles":
                return ack(command, True, profiles=list(self.profiles)), None
            if command == "forget_profile":
                before = len(self.profiles)
                self.profiles = [p for p in self.profiles if p["name"] != message.get("name")]
                found = len(self.profiles) < before
                if found:
                    self.publish(ProfileForgotten(profile=message["name"]))
                return (ack(command, True) if found else ack(command, False, "no such voice")), None
            return real(device, text)  # type: ignore[no-any-return]

        return run_command

    def sent(self, command: str) -> list[dict[str, Any]]:
        return [c for c in self.commands if c.get("command") == command]


@pytest.fixture
async def page(browser: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Page, EnrolmentDevice]]:
    device = EnrolmentDevice(profiles=[{"name": "Bea", "takes": 5}, {"name": "Cy", "takes": 3}])
    monkeypatch.setattr(routes, "run_command", device.run(routes.run_command))
    async with running(settings()) as (appliance, server):
        device.publish = appliance.events.publish
        p = Page(browser, server, appliance.events.publish)
        await p.open()
        yield p, device


class Page:
    def __init__(self, driver: Any, server: WebServer, publish: Callable[[ApplianceEvent], None]) -> None:
        self.driver = driver
        self.server = server
        self.publish = publish

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self) -> None:
        await self.call(self.driver.get, f"http://127.0.0.1:{self.server.port}/")
        await self.shown("state", "Idle")

    def text(self, element: str) -> str:
        return str(self.driver.find_element("id", element).text)

    async def shown(self, element: str, words: str) -> None:
        deadline = time.monotonic() + 20
        while words not in await self.call(self.text, element):
            now = await self.call(self.text, element)
            assert time.monotonic() < deadline, f"{words!r} not shown in #{element}: {now!r}"
            await asyncio.sleep(0.05)

    async def js(self, script: str) -> Any:
        return await self.call(self.driver.execute_script, script)

    async def click(self, element: str) -> None:
        await self.call(lambda: self.driver.find_element("id", element).click())

    def event(self, wire: str, **payload: Any) -> None:
        self.publish(DeviceEvent(wire=wire, payload=payload))


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_teach_it_my_voice_guides_the_takes_to_a_new_profile(
    page: tuple[Page, EnrolmentDevice], tmp_path: Path
) -> None:
    p, device = page
    # On load the page asks for the voices and lists them.
    await p.shown("profiles", "Bea")
    assert device.sent("profiles") == [{"command": "profiles"}]

    await p.call(lambda: p.driver.find_element("id", "enrol-name").send_keys("Ana"))
    await p.click("enrol-start")
    await until(lambda: bool(device.sent("enroll")), "the enroll command")
    assert device.sent("enroll") == [{"command": "enroll", "name": "Ana", "takes": 5}]
    assert await p.js("return document.getElementById('enrol-start').disabled") is True

    p.publish(StateChanged(state="enrolling", previous="idle", source="api"))
    await p.shown("state", "Enrolling")
    p.event("enrol_prompt", name="Ana", take=1, of=5)
    await p.shown("enrol-prompt", "Say “hey Jarvis” now")
    assert await p.call(p.text, "enrol-progress") == "Take 1 of 5"
    assert await p.call(p.text, "enrol-title") == "Learning Ana's voice"
    p.event("enrol_take", name="Ana", take=1, ok=True, reason=None, score=0.912)
    await p.shown("enrol-takes", "Take 1: good (score 0.91)")
    p.event("enrol_prompt", name="Ana", take=2, of=5)
    await p.shown("enrol-progress", "Take 2 of 5")
    # A refused take shows its reason and asks again, in the list and in the spoken-aloud prompt.
    p.event("enrol_take", name="Ana", take=2, ok=False, reason="Too quiet: speak a little closer.", score=0.1)
    await p.shown("enrol-takes", "Take 2: Too quiet: speak a little closer. Say it again.")
    assert await p.call(p.text, "enrol-prompt") == "Too quiet: speak a little closer. Say it again after the chime."
    p.event("enrol_prompt", name="Ana", take=2, of=5)
    await p.shown("enrol-prompt", "Say “hey Jarvis” now")
    # The guided view as docs/device-page.md shows it (UPDATE_DOCS_SCREENSHOT=1 writes it there).
    await p.js("document.getElementById('voices').scrollIntoView({block: 'start'})")
    await p.call(docs_screenshot, p.driver, tmp_path / "enrolment.png", ENROLMENT_SCREENSHOT)
    for take in range(2, 6):
        p.event("enrol_prompt", name="Ana", take=take, of=5)
        await p.shown("enrol-progress", f"Take {take} of 5")
        p.event("enrol_take", name="Ana", take=take, ok=True, reason=None, score=0.8 + take / 100)
        await p.shown("enrol-takes", f"Take {take}: good")
    await p.shown("enrol-prompt", "Training…")
    assert await p.js("return document.getElementById('enrol-bar').value") == 5
    ARTIFACTS.mkdir(exist_ok=True)
    await p.call(p.driver.save_screenshot, str(ARTIFACTS / "page-enrolment.png"))

    device.profiles.append({"name": "Ana", "takes": 5})
    p.event("enrolled", name="Ana", takes=5, train_s=2.4)
    p.publish(StateChanged(state="idle", previous="enrolling"))
    await p.shown("enrol-prompt", "Done: it knows Ana's voice.")
    assert await p.call(p.text, "enrol-progress") == "5 takes, trained in 2.4 s"
    # The list is asked for again and shows the new voice; the form is back.
    await p.shown("profiles", "Ana")
    assert len(device.sent("profiles")) == 2
    assert await p.js("return document.getElementById('enrol-start').disabled") is False
    live = await p.js(
        "return ['enrol-live', 'enrol-takes'].map(id => document.getElementById(id).getAttribute('aria-live'))")
    assert live == ["assertive", "polite"]
    assert await p.js("return document.querySelector('label[for=enrol-name]').textContent") == "Your name"
    assert len(device.sent("enroll")) == 1


async def test_a_failed_enrolment_says_why_and_cancel_sends_stop(page: tuple[Page, EnrolmentDevice]) -> None:
    p, device = page
    await p.shown("profiles", "Bea")
    # Started from another page (or by voice): every page follows it.
    p.publish(StateChanged(state="enrolling", previous="idle", source="api"))
    p.event("enrol_prompt", name="Cy", take=1, of=3)
    await p.shown("enrol-progress", "Take 1 of 3")
    await p.click("enrol-cancel")
    await until(lambda: bool(device.sent("stop")), "the stop command")
    assert device.sent("stop") == [{"command": "stop"}]
    await p.shown("enrol-prompt", "Cancelling…")
    p.event("enrol_failed", name="Cy", reason="cancelled from the page")
    await p.shown("enrol-prompt", "Not learned: cancelled from the page.")
    assert not await p.js("return document.getElementById('enrol-close').hidden")
    assert await p.js("return document.getElementById('enrol-cancel').hidden")
    assert not device.sent("enroll")


async def test_delete_asks_first_then_forgets_the_profile(page: tuple[Page, EnrolmentDevice]) -> None:
    p, device = page
    await p.shown("profiles", "Bea")
    delete = "document.querySelector('#profiles button[aria-label=\"Delete Bea\\'s voice\"]').click()"

    await p.js(f"setTimeout(() => {delete}, 0)")  # confirm() blocks the script that calls it
    alert = await p.call(lambda: _alert(p.driver))
    assert "Forget Bea's voice?" in alert.text
    await p.call(alert.dismiss)
    await p.shown("profiles", "Bea")
    assert not device.sent("forget_profile")

    await p.js(f"setTimeout(() => {delete}, 0)")
    await p.call(lambda: _alert(p.driver).accept())
    await until(lambda: bool(device.sent("forget_profile")), "the forget_profile command")
    assert device.sent("forget_profile") == [{"command": "forget_profile", "name": "Bea"}]
    await p.shown("profiles-status", "Forgot Bea's voice.")
    names = "return [...document.querySelectorAll('#profiles .profile-name')].map(e => e.textContent)"
    await until(lambda: len(device.sent("profiles")) == 2, "the list asked for again")
    deadline = time.monotonic() + 20
    while (shown := await p.js(names)) != ["Cy"]:
        assert time.monotonic() < deadline, shown


async def test_a_voice_deleted_on_one_page_leaves_every_open_page(page: tuple[Page, EnrolmentDevice]) -> None:
    p, device = page
    await p.shown("profiles", "Bea")
    other = await p.call(lambda: p.driver.current_window_handle)
    await p.call(p.driver.switch_to.new_window, "tab")  # a second page on the same device
    await p.open()
    await p.shown("profiles", "Bea")
    asked = len(device.sent("profiles"))
    assert asked == 2  # once per page, on connect

    await p.js("setTimeout(() => document.querySelector("
               "'#profiles button[aria-label=\"Delete Bea\\'s voice\"]').click(), 0)")
    await p.call(lambda: _alert(p.driver).accept())
    await until(lambda: bool(device.sent("forget_profile")), "the forget_profile command")
    names = "return [...document.querySelectorAll('#profiles .profile-name')].map(e => e.textContent)"
    await p.call(p.driver.switch_to.window, other)
    deadline = time.monotonic() + 5
    while (shown := await p.js(names)) != ["Cy"]:
        assert time.monotonic() < deadline, f"the other page still lists {shown}"
        await asyncio.sleep(0.05)
    assert await p.call(p.text, "profiles-status") == "Bea's voice was deleted."
    # Each page asked once more: the other on the event, the deleting one on its ack (not on both).
    await asyncio.sleep(0.5)
    assert len(device.sent("profiles")) == asked + 2
    # A page opened now replays the event among the hello's recent ones and asks for the list once.
    await p.call(p.driver.refresh)
    await p.shown("profiles", "Cy")
    await asyncio.sleep(0.5)
    assert len(device.sent("profiles")) == asked + 3
    assert await p.js(names) == ["Cy"]


async def test_voices_changed_by_the_cli_reach_an_open_page(page: tuple[Page, EnrolmentDevice]) -> None:
    """`appliance wakeword enroll` in another process: the appliance's `wake_profiles_reloaded`."""
    p, device = page
    await p.shown("profiles", "Bea")
    asked = len(device.sent("profiles"))
    device.profiles.append({"name": "Dee", "takes": 5})
    p.event("wake_profiles_reloaded", profiles=["Bea", "Cy", "Dee"])
    await p.shown("profiles", "Dee")
    assert await p.call(p.text, "profiles-status") == "The voices were changed on the device."
    assert len(device.sent("profiles")) == asked + 1


async def test_names_from_the_device_are_shown_as_text(page: tuple[Page, EnrolmentDevice]) -> None:
    p, device = page
    await p.shown("profiles", "Bea")
    device.profiles.append({"name": HOSTILE, "takes": 3})
    await p.call(p.driver.refresh)
    await p.shown("profiles", "onerror")
    names = await p.js("return [...document.querySelectorAll('#profiles .profile-name')].map(e => e.textContent)")
    assert names == ["Bea", "Cy", HOSTILE]
    p.event("enrol_prompt", name=HOSTILE, take=1, of=5)
    await p.shown("enrol-title", HOSTILE)
    p.event("enrol_failed", name=HOSTILE, reason="<b>no speech</b> in any take")
    await p.shown("enrol-prompt", "Not learned: <b>no speech</b> in any take.")
    elements = await p.js("return document.querySelectorAll('#voices img, #voices b').length")
    assert elements == 0 and await p.js("return window.pwned === undefined")


async def test_a_refused_enroll_shows_its_reason_and_gives_the_form_back(page: tuple[Page, EnrolmentDevice]) -> None:
    p, device = page
    await p.shown("profiles", "Bea")
    await p.call(lambda: p.driver.find_element("id", "enrol-name").send_keys("Bea"))
    await p.click("enrol-start")
    await p.shown("enrol-error", "Cannot learn a voice now: Bea is already enrolled")
    assert device.sent("enroll") == [{"command": "enroll", "name": "Bea", "takes": 5}]
    assert await p.js("return document.getElementById('enrol').hidden") is True
    assert await p.js("return document.getElementById('enrol-start').disabled") is False


def _alert(driver: Any) -> Any:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())


async def test_a_page_opened_during_an_enrolment_catches_up(
    page: tuple[Page, EnrolmentDevice], monkeypatch: pytest.MonkeyPatch
) -> None:
    p, _device = page
    await p.shown("profiles", "Bea")
    p.event("enrol_prompt", name="Dee", take=1, of=4)
    p.event("enrol_take", name="Dee", take=1, ok=True, reason=None, score=0.93)
    p.event("enrol_prompt", name="Dee", take=2, of=4)
    api = p.server.api
    assert api is not None
    real_hello = api.hello
    # The device is enrolling when this page connects (its hello says so; the recent events tell the rest).
    monkeypatch.setattr(api, "hello", lambda: {**real_hello(), "state": "enrolling"})
    await p.call(p.driver.refresh)
    await p.shown("state", "Enrolling")
    await p.shown("enrol-progress", "Take 2 of 4")
    assert await p.call(p.text, "enrol-takes") == "Take 1: good (score 0.93)"
    assert await p.call(p.text, "enrol-title") == "Learning Dee's voice"
    assert await p.js("return document.getElementById('enrol-start').disabled") is True
