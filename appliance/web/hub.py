"""Fan-out of the event stream to WebSocket clients, each with its own bounded queue.

The hub is an `EventBus` subscriber: it runs on the loop thread and must not block, so it only
serialises the event once and offers the text to each client's queue. A client whose queue is full
(it stopped reading, or reads slower than events come) is marked overflowed; its connection handler
closes it and the drop is counted. Nothing a client does can slow the appliance down.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable
from typing import Any

from ..events import ApplianceEvent

RECENT_EVENTS = 50


class Client:
    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.overflowed = asyncio.Event()

    def offer(self, text: str) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed.set()


class EventHub:
    def __init__(self, queue_size: int, on_clients: Callable[[int], None] = lambda n: None) -> None:
        self.queue_size = queue_size
        self.clients: set[Client] = set()
        # The last events, for a page opened after a conversation (sent in the hello message).
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_EVENTS)
        self._on_clients = on_clients

    def join(self) -> Client:
        client = Client(self.queue_size)
        self.clients.add(client)
        self._on_clients(len(self.clients))
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)
        self._on_clients(len(self.clients))

    def on_event(self, event: ApplianceEvent) -> None:
        """The hub's subscription to the event stream."""
        self.broadcast(event.as_dict())

    def broadcast(self, message: dict[str, Any]) -> None:
        self.recent.append(message)
        text = json.dumps(message, default=str)
        for client in list(self.clients):
            client.offer(text)
