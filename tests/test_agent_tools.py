"""The built-in tools through the SDK's own tool invocation: timers, memory, volume, time, weather,
and the one failure policy (a failing or slow tool still gives the model something to say)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agents import FunctionTool
from agents.tool_context import ToolContext

from appliance.conversation.tools import BUILTIN_TOOL_NAMES, ConversationControl, ToolServices, builtin_tools
from appliance.conversation.tools.errors import is_error_result
from appliance.conversation.tools.memory import MemoryBook
from appliance.conversation.tools.timers import TimerBook, parse_duration
from appliance.events import ApplianceEvent, EventBus, TimerChanged
from appliance.store import Store
from tests.inproc import make_settings


class Volume:
    """Stands in for the Appliance's persisted volume (the same two members)."""

    def __init__(self) -> None:
        self.volume = 50

    def set_volume(self, percent: int) -> int:
        self.volume = percent
        return percent


async def call(tool: FunctionTool, **arguments: Any) -> str:
    text = json.dumps(arguments)
    ctx = ToolContext(context=None, tool_name=tool.name, tool_call_id="call-1", tool_arguments=text)
    return str(await tool.on_invoke_tool(ctx, text))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path)
    yield s
    s.close()


class Enrolment:
    """Stands in for the Appliance's enrolment command (tests/test_enrolment_commands.py tests the tool)."""

    def enroll_after_conversation(self, name: str) -> Any:
        raise AssertionError("not called here")


def tools_for(store: Store, events: EventBus, **agent: Any) -> dict[str, FunctionTool]:
    settings = make_settings(agent=agent) if agent else make_settings()
    services = ToolServices(settings, timers=TimerBook(store, events), memory=MemoryBook(store), volume=Volume(),
                            enrolment=Enrolment())
    return builtin_tools(services, ConversationControl(events))


def test_every_builtin_name_is_offered(store: Store) -> None:
    assert set(tools_for(store, EventBus())) == BUILTIN_TOOL_NAMES


async def test_timer_round_trip_persists_and_logs(store: Store, tmp_path: Path) -> None:
    events = EventBus()
    seen: list[ApplianceEvent] = []
    events.subscribe(seen.append)
    tools = tools_for(store, events)
    assert "5 minutes" in await call(tools["set_timer"], duration="5 min", label="pasta")
    assert "pasta" in await call(tools["list_timers"])
    timers = [e for e in seen if isinstance(e, TimerChanged)]
    assert [(t.action, t.label, t.seconds) for t in timers] == [("set", "pasta", 300.0)]
    # A new store on the same directory (a restart) still has it.
    again = TimerBook(Store(tmp_path), EventBus())
    assert [t.label for t in again.pending()] == ["pasta"]
    assert 290 < again.pending()[0].remaining() <= 300
    assert "Cancelled: pasta" in await call(tools["cancel_timer"], label="PASTA")
    assert await call(tools["list_timers"]) == "No timers are running."
    assert [e.action for e in seen if isinstance(e, TimerChanged)] == ["set", "cancelled"]


async def test_an_unreadable_duration_is_an_error_result(store: Store) -> None:
    result = await call(tools_for(store, EventBus())["set_timer"], duration="soon", label="x")
    assert is_error_result(result) and "cannot read 'soon'" in result


def test_durations() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("1h 30m") == 5400
    assert parse_duration("2 minutes and 10 seconds") == 130
    assert parse_duration("PT5M") == 300
    assert parse_duration("1:30") == 90
    with pytest.raises(ValueError):
        parse_duration("5 parsecs")


def test_due_timers_are_finished_and_reported_once(store: Store) -> None:
    book = TimerBook(store, EventBus())
    book.add(1, "eggs")
    book.add(600, "bread")
    assert book.due(time.time() + 2) and [t.label for t in book.due(time.time() + 2)] == ["eggs"]
    book.finish(book.due(time.time() + 2))
    assert [t.label for t in book.pending()] == ["bread"]
    text = book.instructions(book.take_rang())
    assert "these timers rang: eggs" in text and "bread" in text
    assert book.take_rang() == []


async def test_memory_round_trip_and_instructions(store: Store) -> None:
    tools = tools_for(store, EventBus())
    assert await call(tools["remember"], fact="Anna is  vegetarian") == "Remembered: Anna is vegetarian"
    await call(tools["remember"], fact="anna is vegetarian")  # the same fact twice is kept once
    await call(tools["remember"], fact="The cat is called Miso")
    book = MemoryBook(store)
    assert [f.text for f in book.facts()] == ["Anna is vegetarian", "The cat is called Miso"]
    assert "- The cat is called Miso" in book.instructions()
    assert "Forgotten: The cat is called Miso" in await call(tools["forget"], fact="cat")
    assert [f.text for f in book.facts()] == ["Anna is vegetarian"]
    assert "Nothing remembered" in await call(tools["forget"], fact="dog")


async def test_volume_tools_clamp_and_report(store: Store) -> None:
    events = EventBus()
    volume = Volume()
    services = ToolServices(make_settings(), volume=volume)
    tools = builtin_tools(services, ConversationControl(events))
    assert await call(tools["set_volume"], percent=130) == "Volume is now 100 percent."
    assert await call(tools["change_volume"], delta=-30) == "Volume is now 70 percent."
    assert volume.volume == 70


async def test_time_in_the_configured_zone(store: Store) -> None:
    text = await call(tools_for(store, EventBus(), timezone="Asia/Tokyo")["get_current_time"])
    assert "JST" in text and "UTC+0900" in text


def test_an_unknown_zone_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        make_settings(agent={"timezone": "Mars/Olympus"})


class Forecast(BaseHTTPRequestHandler):
    delay_s = 0.0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        time.sleep(self.delay_s)
        body = json.dumps({
            "current_condition": [{"temp_C": "14", "FeelsLikeC": "12", "windspeedKmph": "20",
                                   "weatherDesc": [{"value": "Light rain"}]}],
            "weather": [{"mintempC": "9", "maxtempC": "15"}, {"mintempC": "8", "maxtempC": "17"}],
            "path": self.path,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def forecast() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Forecast)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    Forecast.delay_s = 0.0


async def test_weather_from_the_configured_service(store: Store, forecast: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{forecast.server_address[1]}"
    text = await call(tools_for(store, EventBus(), weather_url=url)["get_weather"], place="Bad Tölz")
    assert text.startswith("Bad Tölz: now 14 °C, light rain") and "tomorrow 8 to 17 °C" in text


async def test_a_down_or_slow_service_is_an_error_result_not_silence(
    store: Store, forecast: ThreadingHTTPServer
) -> None:
    down = await call(tools_for(store, EventBus(), weather_url="http://127.0.0.1:9")["get_weather"], place="Oslo")
    assert is_error_result(down) and "cannot be reached" in down
    Forecast.delay_s = 2.0
    url = f"http://127.0.0.1:{forecast.server_address[1]}"
    tool = tools_for(store, EventBus(), weather_url=url, tool_timeout_s=0.3)["get_weather"]
    slow = await call(tool, place="Oslo")
    assert is_error_result(slow) and "timed out" in slow
