"""The appliance on MQTT: its state out (from the event stream), commands in (through `Commands`).

A subscriber of the event stream and a caller of commands, nothing else. Every message on a command
topic is untrusted: anything too long, not text, not the expected shape, out of range or unknown is
logged (rate-limited) and ignored, and answered with a failed ack; nothing is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from ..events import (
    ApplianceEvent,
    EventBus,
    MuteChanged,
    StateChanged,
    TimerChanged,
    TranscriptLine,
    VolumeChanged,
    Wake,
)
from ..settings import Settings
from . import homeassistant as ha
from .arbitration import Arbitration, is_claim_topic
from .commands import Ack, Commands, RateLimitedLog, ack
from .mqtt import BrokerLink
from .mqtt_events import RejectReason
from .topics import ALL_WAKES, DeviceTopics

log = logging.getLogger("appliance.mqtt")

MAX_COMMAND_BYTES = 4096  # as the device page's commands


class MqttBridge:
    def __init__(self, settings: Settings, events: EventBus, commands: Commands, version: str, *,
                 on_rejected: Callable[[RejectReason], None] = lambda reason: None) -> None:
        m = settings.mqtt
        self.settings = m
        self.commands = commands
        self.topics = DeviceTopics(m.site, m.device)
        self.version = version
        self._birth = ha.birth_topic(m.discovery_prefix)
        subscriptions = [self.topics.set_all, self.topics.command, self._birth]
        if m.home is not None:
            subscriptions.append(ALL_WAKES)
        self.link = BrokerLink(m, self.topics, events, subscriptions=subscriptions, on_message=self.on_message)
        self.arbitration: Arbitration | None = (
            Arbitration(self.link, self.topics, m.home, m.arbitration_window_ms / 1000) if m.home else None
        )
        self.rejected = RateLimitedLog(log)
        # Each ignored message is counted through a plain callback (the metrics' counter), not an event:
        # an event per message would let a garbage flood flood the event bus and the log the rate-limited
        # log protects, and an event of counts per interval would need a timer for no more truth.
        self._on_rejected = on_rejected
        for topic, payload in ha.discovery_messages(m.discovery_prefix, self.topics, m.entities, version).items():
            self.link.retain(topic, payload)
        status = commands.status()
        self._status: dict[str, Any] = {
            "state": status.state, "muted": status.muted, "volume": status.volume, "wake_score": None,
            "device": m.device, "site": m.site, "home": m.home, "version": version,
        }
        self._timers: dict[int | str, dict[str, Any]] = {
            t.id: {"label": t.label, "due": _iso(t.due_at)} for t in status.timers
        }
        self._publish_state()
        self._unsubscribe = events.subscribe(self.on_event)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.link.run(), name="mqtt")

    async def close(self) -> None:
        self._unsubscribe()
        await self.link.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- state out --------------------------------------------------------------------------------
    def _publish_state(self) -> None:
        s, link, t = self._status, self.link, self.topics
        link.retain(t.state_of("state"), s["state"])
        link.retain(t.state_of("muted"), "ON" if s["muted"] else "OFF")
        link.retain(t.state_of("volume"), str(s["volume"]))
        if s["wake_score"] is not None:
            link.retain(t.state_of("wake_score"), str(s["wake_score"]))
        link.retain(t.state_of("timers"), str(len(self._timers)))
        timers = sorted(self._timers.values(), key=lambda x: x["due"])
        link.retain(t.state_of("timers/attributes"), json.dumps({"timers": timers}))
        link.retain(t.state_of("status"), json.dumps({**s, "timers": len(self._timers)}))

    def on_event(self, event: ApplianceEvent) -> None:
        """The bridge's subscription to the event stream (loop thread; never blocks)."""
        s = self._status
        if isinstance(event, StateChanged):
            s["state"] = event.state
        elif isinstance(event, MuteChanged):
            s["muted"] = event.muted
        elif isinstance(event, VolumeChanged):
            s["volume"] = event.volume
        elif isinstance(event, Wake) and event.score is not None:
            s["wake_score"] = event.score
        elif isinstance(event, TimerChanged):
            key: int | str = event.timer_id if event.timer_id is not None else event.label
            if event.action == "set" and event.seconds is not None:
                self._timers[key] = {"label": event.label, "due": _iso(time.time() + event.seconds)}
            elif event.action != "set":
                self._timers.pop(key, None)
        elif isinstance(event, TranscriptLine):
            if self.settings.publish_transcripts:
                self.link.send(self.topics.transcript, json.dumps({"role": event.role, "text": event.text}))
            return
        else:
            return
        self._publish_state()

    # -- commands in ------------------------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        if topic == self._birth:
            if payload.strip() == b"online":  # Home Assistant (re)started: announce the entities again
                self.link.resend(self.settings.discovery_prefix + "/")
            return
        if self.arbitration is not None and is_claim_topic(topic):
            self.arbitration.on_claim(topic, payload)
            return
        if len(payload) > MAX_COMMAND_BYTES:
            self._answer(topic, ack(None, False, f"message too long ({len(payload)} bytes)"), "too_long")
            return
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            self._answer(topic, ack(None, False, "not UTF-8 text"), "not_text")
            return
        if topic == self.topics.command:
            self._answer(topic, self._json_command(text))
        elif topic == self.topics.set_topic("muted"):
            word = text.strip().upper()
            self._answer(topic, self.commands.set_muted(word == "ON") if word in ("ON", "OFF")
                         else ack("mute", False, "expected ON or OFF"))
        elif topic == self.topics.set_topic("volume"):
            self._answer(topic, self._volume(_number(text.strip())))
        elif topic == self.topics.set_topic("announce"):  # Home Assistant's notify entity: the text itself
            self._answer(topic, self.commands.announce(text, "homeassistant"))
        elif topic == self.topics.set_topic("talk"):
            self._answer(topic, self.commands.start() if text.strip() == "PRESS" else ack("start", False,
                                                                                        "expected PRESS"))
        else:
            self._answer(topic, ack(None, False, "unknown command topic"), "unknown_topic")

    def _volume(self, value: Any) -> Ack:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return ack("volume", False, "value must be a number from 0 to 100")
        return self.commands.set_volume(value)

    def _json_command(self, text: str) -> Ack:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            return ack(None, False, "not JSON")
        if not isinstance(message, dict) or not isinstance(message.get("command"), str):
            return ack(None, False, 'expected {"command": ...}')
        command: str = message["command"]
        if command == "start":
            return self.commands.start()
        if command == "stop":
            return self.commands.stop()
        if command in ("mute", "unmute"):
            return self.commands.set_muted(command == "mute")
        if command == "volume":
            return self._volume(message.get("value"))
        if command == "dismiss":
            return self.commands.dismiss()
        if command == "announce":
            return self.commands.announce(message.get("text"), "mqtt")
        return ack(command[:40], False, f"unknown command {command[:40]!r}")

    def _answer(self, topic: str, answer: Ack, reason: RejectReason = "refused") -> None:
        if not answer.get("ok"):
            self._on_rejected(reason)
            self.rejected.warning(reason, f"MQTT command on {topic} ignored: {answer.get('error')}", topic=topic)
        self.link.send(self.topics.ack, json.dumps({**answer, "topic": topic}))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _iso(unix: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat(timespec="seconds")
