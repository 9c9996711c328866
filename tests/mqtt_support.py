"""A client acting as Home Assistant (or a fleet's operator): collects what it hears, publishes commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt

from appliance import __version__
from appliance.app import Appliance
from appliance.integrations.bridge import MqttBridge
from appliance.integrations.commands import ControlsCommands
from tests.inproc import EventLog, make_settings
from tests.mosquitto import Mosquitto


class Listener:
    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[float, str, str, bool]] = []  # (time, topic, payload, retained)

    def payloads(self, topic: str) -> list[str]:
        return [p for _, t, p, _ in self.messages if t == topic]

    def last(self, topic: str) -> str | None:
        found = self.payloads(topic)
        return found[-1] if found else None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                tail = "\n".join(f"{t} {p[:120]!r}" for _, t, p, _ in self.messages[-20:])
                raise AssertionError(f"timed out waiting for {what}\n{tail}")
            await asyncio.sleep(0.02)

    async def publish(self, topic: str, payload: str | bytes, **kw: Any) -> None:
        await self.client.publish(topic, payload, **kw)


@contextlib.asynccontextmanager
async def listening(url_port: int, *topics: str, **login: Any) -> AsyncIterator[Listener]:
    async with aiomqtt.Client("127.0.0.1", url_port, identifier=f"test-{time.monotonic_ns()}", **login) as client:
        listener = Listener(client)
        for topic in topics:
            await client.subscribe(topic, qos=1)

        async def read() -> None:
            async for message in client.messages:
                payload = message.payload
                text = payload.decode(errors="replace") if isinstance(payload, bytes | bytearray) else str(payload)
                listener.messages.append((time.monotonic(), message.topic.value, text, bool(message.retain)))

        reader = asyncio.create_task(read())
        try:
            yield listener
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await reader


@contextlib.asynccontextmanager
async def bridged(broker: Mosquitto, **mqtt: Any) -> AsyncIterator[tuple[Appliance, MqttBridge, EventLog]]:
    """An Appliance (its commands and event stream; no audio) with its MQTT bridge connected."""
    settings = make_settings(mqtt={"url": broker.url, "site": "flat", "device": "kitchen", **mqtt})
    app = Appliance(settings, "sk-test", detector=None)
    log = EventLog()
    root = logging.getLogger("appliance")
    root.addHandler(log)
    root.setLevel(logging.DEBUG)
    bridge = MqttBridge(settings, app.events, ControlsCommands(app), __version__)
    bridge.start()
    try:
        await asyncio.wait_for(bridge.link.connected.wait(), 10)
        yield app, bridge, log
    finally:
        await bridge.close()
        root.removeHandler(log)
