"""A device-API client for the tests: `appliance run` with its HTTP listener on a free port, and a
WebSocket client that collects every message it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.e2e_support import ApplianceProcess, appliance_env


def web_env(card_env: dict[str, str], server_url: str, **overrides: str) -> dict[str, str]:
    env = {"APPLIANCE_HEALTH__ENABLED": "true", "APPLIANCE_HEALTH__ADDRESS": "127.0.0.1:0"}
    env.update(overrides)
    return appliance_env(card_env, server_url, **env)


async def web_port(app: ApplianceProcess) -> int:
    await app.wait_for(lambda: bool(app.events("http_listen")), 60, "the HTTP listener")
    return int(app.events("http_listen")[0]["port"])


class EventClient:
    """One `/api/events` connection; `messages` holds everything received, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, port: int, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> EventClient:
        ws = await connect(f"ws://{host}:{port}/api/events", additional_headers=headers)
        return cls(ws)

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.ws:
                self.messages.append(json.loads(text))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("event") == name]

    def states(self) -> list[str]:
        return [m["state"] for m in self.events("state")]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {self.messages[-20:]}")
            await asyncio.sleep(0.05)

    async def command(self, command: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send a command and return its ack."""
        before = len(self.events("ack"))
        await self.ws.send(json.dumps(command))
        await self.wait_for(lambda: len(self.events("ack")) > before, timeout, f"the ack of {command}")
        return self.events("ack")[before]

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, 2)


def chrome_options(*extra: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=420,1000",
                "--disable-gpu", "--mute-audio", *extra):
        options.add_argument(arg)
    return options
