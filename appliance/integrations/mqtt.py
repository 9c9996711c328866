"""One connection to the MQTT broker, kept up for as long as the appliance runs.

`BrokerLink` connects (TLS for `mqtts://`), sets the last will (`availability` = `offline`, retained, so
Home Assistant and the fleet see a device that vanished), subscribes, and on every (re)connection
publishes what must be retained (discovery configs, current state) and then `online`. A broker that is
down or refuses the login never stops the appliance: the link retries with a doubling backoff and the
log shows one `error` when it is lost and one `recovered` when it is back, not a line per attempt.

Publishing never blocks the caller (event subscribers run on the loop thread): retained values are
kept (the latest per topic) and re-sent on each connection; live messages go through a bounded queue
and are dropped, counted, while the broker is away or the queue is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import aiomqtt

from ..events import EventBus
from ..redaction import register_secret
from ..settings import MqttSettings

# The events live in mqtt_events (the metrics read them without loading the client); re-exported here.
from .mqtt_events import BrokerConnected as BrokerConnected
from .mqtt_events import BrokerLost as BrokerLost
from .mqtt_events import BrokerRecovered as BrokerRecovered
from .topics import OFFLINE, ONLINE, DeviceTopics

log = logging.getLogger("appliance.mqtt")

FIRST_BACKOFF_S = 1.0
CONNECT_TIMEOUT_S = 10.0
OUTGOING_QUEUE = 256
INCOMING_QUEUE = 256  # a flood on a command topic beyond this is dropped by the client library


def broker_address(url: str) -> tuple[str, int, bool]:
    """Host, port and whether TLS is used, from `mqtt://host[:1883]` or `mqtts://host[:8883]`."""
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    assert parts.hostname is not None  # the settings check it
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


def _tls_context(settings: MqttSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


MessageHandler = Callable[[str, bytes], None]


class BrokerLink:
    def __init__(
        self,
        settings: MqttSettings,
        topics: DeviceTopics,
        events: EventBus,
        *,
        subscriptions: Sequence[str],
        on_message: MessageHandler,
        on_connected: Callable[[], None] = lambda: None,
    ) -> None:
        assert settings.url is not None
        self.settings = settings
        self.topics = topics
        self.events = events
        self.host, self.port, self.tls = broker_address(settings.url)
        self.broker = f"{self.host}:{self.port}"
        self.client_id = f"appliance-{topics.site}-{topics.device}"
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connected = on_connected
        self._retained: dict[str, str] = {}
        self._outgoing: asyncio.Queue[tuple[str, str, int, bool]] = asyncio.Queue(maxsize=OUTGOING_QUEUE)
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.connections = 0
        self.dropped = 0
        if settings.password is not None:
            register_secret(settings.password.get_secret_value())  # masked in every log line

    # -- publishing (never blocks) ----------------------------------------------------------------
    def retain(self, topic: str, payload: str) -> None:
        """Set a retained value: sent now when connected, and again on every connection."""
        if self._retained.get(topic) == payload:
            return
        self._retained[topic] = payload
        if self.connected.is_set():
            self._offer(topic, payload, 1, True)

    def forget(self, topic: str) -> None:
        """Clear a retained topic on the broker (an empty retained message deletes it)."""
        self._retained.pop(topic, None)
        if self.connected.is_set():
            self._offer(topic, "", 1, True)

    def resend(self, prefix: str) -> None:
        """Publish again every retained value under `prefix` (Home Assistant came back online)."""
        for topic, payload in list(self._retained.items()):
            if topic.startswith(prefix):
                self._offer(topic, payload, 1, True)

    def send(self, topic: str, payload: str, qos: int = 0) -> bool:
        """A live message; dropped (counted) while the broker is away. True when queued."""
        if not self.connected.is_set():
            self.dropped += 1
            return False
        return self._offer(topic, payload, qos, False)

    def _offer(self, topic: str, payload: str, qos: int, retain: bool) -> bool:
        try:
            self._outgoing.put_nowait((topic, payload, qos, retain))
            return True
        except asyncio.QueueFull:
            self.dropped += 1
            return False

    # -- the connection ---------------------------------------------------------------------------
    def _client_for(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(
            self.host,
            self.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password is not None else None,
            identifier=self.client_id,
            keepalive=s.keepalive_s,
            timeout=CONNECT_TIMEOUT_S,
            will=aiomqtt.Will(self.topics.availability, OFFLINE, qos=1, retain=True),
            tls_context=_tls_context(s) if self.tls else None,
            max_queued_incoming_messages=INCOMING_QUEUE,
            logger=_quiet_library_logger(),
        )

    async def run(self) -> None:
        """Connect and serve until cancelled; every failure is retried."""
        loop = asyncio.get_running_loop()
        backoff = FIRST_BACKOFF_S
        lost_at: float | None = None
        while True:
            try:
                async with self._client_for() as client:
                    self._client = client
                    for topic in self._subscriptions:
                        await client.subscribe(topic, qos=1)
                    self._start_of_connection()
                    self.connections += 1
                    self.events.publish(BrokerConnected(broker=self.broker, client_id=self.client_id))
                    if lost_at is not None:
                        self.events.publish(BrokerRecovered(broker=self.broker, down_s=round(loop.time() - lost_at, 1)))
                        lost_at = None
                    backoff = FIRST_BACKOFF_S
                    await self._serve(client)
            except Exception as exc:  # MqttError, and TLS set-up errors (a CA file that is no certificate)
                self._client = None
                self.connected.clear()
                if lost_at is None:
                    lost_at = loop.time()
                    self.events.publish(BrokerLost(broker=self.broker, retry_in_s=backoff, text=_why(exc)))
                else:
                    log.debug("MQTT broker %s still unreachable: %s", self.broker, _why(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)

    def _start_of_connection(self) -> None:
        """Retained values first (Home Assistant wants the config before the entity's availability),
        then `online`. Live messages from before the connection are stale: dropped."""
        while not self._outgoing.empty():
            self._outgoing.get_nowait()
        self._on_connected()  # may set retained values: stored now, sent just below
        self.connected.set()
        for topic, payload in self._retained.items():
            self._offer(topic, payload, 1, True)
        self._offer(self.topics.availability, ONLINE, 1, True)

    async def _serve(self, client: aiomqtt.Client) -> None:
        sender = asyncio.create_task(self._send_all(client), name="mqtt-send")
        try:
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
                try:
                    self._on_message(message.topic.value, bytes(data))
                except Exception:  # a handler bug must not end the connection
                    log.exception("MQTT message on %s not handled", message.topic.value)
            raise aiomqtt.MqttError("the message stream ended")
        finally:
            self.connected.clear()
            sender.cancel()
            # Not `await sender`: a publish in flight can swallow the cancellation (seen with TLS).
            await asyncio.wait({sender}, timeout=2)

    async def _send_all(self, client: aiomqtt.Client) -> None:
        me = asyncio.current_task()
        while me is None or not me.cancelling():
            topic, payload, qos, retain = await self._outgoing.get()
            await client.publish(topic, payload, qos=qos, retain=retain)

    async def close(self) -> None:
        """A clean stop: `offline` (the will is only sent when a client vanishes), then disconnect."""
        client = self._client
        if client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(client.publish(self.topics.availability, OFFLINE, qos=1, retain=True), 2)


def _quiet_library_logger() -> logging.Logger:
    """The client library's own logger: its per-message warnings (a full queue) would flood the log."""
    library = logging.getLogger("appliance.mqtt.client")
    library.setLevel(logging.ERROR)
    return library
