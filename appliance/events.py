"""The appliance's one event stream.

Everything that happens (a state change, a wake, a conversation's end, an error, a tool call…) is
published once, as a typed, immutable object, on one in-process `EventBus`. The JSON log, the
Prometheus metrics, the LEDs and (later) the device API are subscribers; none of them is fed from
its own call site. An event's `name` and `fields()` are the contract: they are exactly the `event`
field and the other fields of its JSON log line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from .redaction import mask

log = logging.getLogger("appliance.events")

TriggerSource = Literal["wakeword", "button", "api"]
ButtonAction = Literal["talk", "interrupt", "end", "commit"]


@dataclass(frozen=True, kw_only=True)
class ApplianceEvent:
    """Base of every event. `name` is the JSON log's `event` field; `logger` the logger it is written to."""

    name: ClassVar[str] = "event"
    logger: ClassVar[str] = "appliance"
    level: ClassVar[int] = logging.INFO
    not_fields: ClassVar[frozenset[str]] = frozenset()

    def fields(self) -> dict[str, Any]:
        """The event's fields as they appear in the log line and the API (unset optional ones left out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                out.update(value)
            elif value is not None and f.name not in self.not_fields:
                out[f.name] = value
        return out

    def message(self) -> str:
        return self.name

    def as_dict(self) -> dict[str, Any]:
        """One JSON-ready object: `{"event": name, **fields}` (what the device API sends), with every
        registered secret masked (a tool's result or error text may carry one)."""
        payload: dict[str, Any] = mask({"event": self.name, **self.fields()})
        return payload


@dataclass(frozen=True, kw_only=True)
class StateChanged(ApplianceEvent):
    name: ClassVar[str] = "state"
    logger: ClassVar[str] = "appliance.state"
    state: str
    previous: str
    reason: str | None = None
    source: str | None = None
    kind: str | None = None

    def message(self) -> str:
        return f"{self.previous} -> {self.state}"


@dataclass(frozen=True, kw_only=True)
class Wake(ApplianceEvent):
    name: ClassVar[str] = "wake"
    source: TriggerSource
    model: str | None = None
    score: float | None = None
    verifier_score: float | None = None
    barge_in: Literal[True] | None = None
    profile: str | None = None  # the enrolled voice whose personal verifier made or confirmed the wake

    def message(self) -> str:
        return "wake word during answer: barge-in" if self.barge_in else f"wake by {self.source}"


@dataclass(frozen=True, kw_only=True)
class WakeLearned(ApplianceEvent):
    """The wake word learned from a probable mistake (triggers/learning.py): a wake nobody answered or
    that was cancelled at once (`false_wake`), or a near miss just before a wake (`missed_wake`)."""

    name: ClassVar[str] = "wake_learned"
    kind: Literal["false_wake", "missed_wake"]
    profile: str | None = None

    def message(self) -> str:
        return f"wake word learned a {self.kind.replace('_', ' ')}"


@dataclass(frozen=True, kw_only=True)
class WakeIgnored(ApplianceEvent):
    """A wake not acted on: the speaker's own audio explains it (`played_audio`), or a press or wake
    word came while the audio devices reopen after a fault (`audio_reopening`)."""

    name: ClassVar[str] = "wake_ignored"
    reason: Literal["played_audio", "audio_reopening"]
    source: TriggerSource | None = None
    model: str | None = None
    score: float | None = None

    def message(self) -> str:
        if self.reason == "played_audio":
            return "wake word in what the speaker played: ignored"
        return f"wake by {self.source} ignored: the audio devices are reopening"


@dataclass(frozen=True, kw_only=True)
class ButtonPressed(ApplianceEvent):
    """What a button press did during a conversation (a press that starts one is a `Wake`)."""

    name: ClassVar[str] = "button"
    action: ButtonAction

    def message(self) -> str:
        return {
            "talk": "push-to-talk: talking",
            "interrupt": "button interrupts the answer",
            "end": "button ends the conversation",
            "commit": "push-to-talk: released, turn committed",
        }[self.action]


@dataclass(frozen=True, kw_only=True)
class SessionOpened(ApplianceEvent):
    name: ClassVar[str] = "session_open"
    logger: ClassVar[str] = "appliance.conversation"
    connect_ms: float

    def message(self) -> str:
        return f"session open in {self.connect_ms:.0f} ms"


@dataclass(frozen=True, kw_only=True)
class AnswerInterrupted(ApplianceEvent):
    name: ClassVar[str] = "interrupted"
    logger: ClassVar[str] = "appliance.conversation"
    dropped_ms: int

    def message(self) -> str:
        return "answer interrupted"


@dataclass(frozen=True, kw_only=True)
class ToolCalled(ApplianceEvent):
    """A tool call finished. `error` says what went wrong (unknown tool, raised, timed out, MCP down)."""

    name: ClassVar[str] = "tool"
    logger: ClassVar[str] = "appliance.agent"
    tool: str
    result: str | None = None
    error: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def message(self) -> str:
        return f"tool {self.tool} failed: {self.error}" if self.error else self.tool


TimerAction = Literal["set", "rang", "dismissed", "cancelled"]


@dataclass(frozen=True, kw_only=True)
class TimerChanged(ApplianceEvent):
    """A kitchen timer was set, rang, was dismissed (wake word, button, or its ring ran out) or cancelled."""

    name: ClassVar[str] = "timer"
    logger: ClassVar[str] = "appliance.timers"
    action: TimerAction
    label: str
    timer_id: int | None = None
    seconds: float | None = None  # set: its length
    by: str | None = None  # dismissed: "wakeword", "button", "api" or "timeout"

    def message(self) -> str:
        return f"timer {self.label!r} {self.action}"


@dataclass(frozen=True, kw_only=True)
class HandedOff(ApplianceEvent):
    """The conversation moved from one agent to another; logged as `{"from": ..., "to": ...}`."""

    name: ClassVar[str] = "handoff"
    logger: ClassVar[str] = "appliance.agent"
    from_agent: str
    to_agent: str

    def fields(self) -> dict[str, Any]:
        return {"from": self.from_agent, "to": self.to_agent}

    def message(self) -> str:
        return f"handoff {self.from_agent} -> {self.to_agent}"


TranscriptRole = Literal["user", "assistant"]


@dataclass(frozen=True, kw_only=True)
class TranscriptLine(ApplianceEvent):
    """A finished utterance: the person's transcribed speech or the agent's spoken answer."""

    name: ClassVar[str] = "transcript"
    logger: ClassVar[str] = "appliance.conversation"
    level: ClassVar[int] = logging.DEBUG  # what is said in the house is not written to the log by default
    role: TranscriptRole
    text: str
    agent: str | None = None

    def message(self) -> str:
        return f"{self.role}: {self.text}"


@dataclass(frozen=True, kw_only=True)
class GuardrailTripped(ApplianceEvent):
    name: ClassVar[str] = "guardrail"
    logger: ClassVar[str] = "appliance.agent"
    level: ClassVar[int] = logging.WARNING
    guardrail: str
    agent: str | None = None
    phrase: str | None = None

    def message(self) -> str:
        return f"output guardrail {self.guardrail} tripped; the answer was stopped"


McpAction = Literal["connected", "failed", "lost"]


@dataclass(frozen=True, kw_only=True)
class McpServerChanged(ApplianceEvent):
    """An MCP server came up (with its tools), failed to start, or was lost (it is retried)."""

    name: ClassVar[str] = "mcp"
    logger: ClassVar[str] = "appliance.mcp"
    server: str
    action: McpAction
    tools: int | None = None
    retry_in_s: float | None = None
    error: str | None = None

    def message(self) -> str:
        if self.action == "connected":
            return f"MCP server {self.server}: connected, {self.tools} tools"
        return f"MCP server {self.server} {self.action}: {self.error}; retrying in {self.retry_in_s:.0f} s"


@dataclass(frozen=True, kw_only=True)
class ConversationEnded(ApplianceEvent):
    name: ClassVar[str] = "conversation_end"
    reason: str
    duration_s: float
    connect_ms: float
    sent_audio_ms: int
    dropped_blocks: int
    wake_to_open_ms: float

    def message(self) -> str:
        return f"conversation ended: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class ErrorRaised(ApplianceEvent):
    """An error the appliance recovers from; `kind` labels the metric, `text` is the log message."""

    name: ClassVar[str] = "error"
    level: ClassVar[int] = logging.ERROR
    not_fields: ClassVar[frozenset[str]] = frozenset({"text"})
    kind: str
    retry_in_s: float | None = None
    text: str = ""

    def message(self) -> str:
        return self.text or self.kind


@dataclass(frozen=True, kw_only=True)
class MicBlockFailed(ApplianceEvent):
    """Processing a microphone block raised (LiteRT, soxr, AEC, memory): the block is skipped. Published
    once per spell of failures; a spell that goes on becomes an `audio_device` error."""

    name: ClassVar[str] = "pipeline_error"
    logger: ClassVar[str] = "appliance.audio.pipeline"
    level: ClassVar[int] = logging.ERROR
    not_fields: ClassVar[frozenset[str]] = frozenset({"text"})
    error: str  # the exception's type
    text: str = ""

    def message(self) -> str:
        return f"microphone processing failed: {self.error}: {self.text}"


@dataclass(frozen=True, kw_only=True)
class EchoRelearning(ApplianceEvent):
    """An xrun moved the echo against the speaker reference: the model-bound audio is muted again until
    the echo canceller has re-learned (once per re-learning, however many xruns)."""

    name: ClassVar[str] = "aec_relearn"
    logger: ClassVar[str] = "appliance.audio.pipeline"
    overflows: int
    reference_breaks: int

    def message(self) -> str:
        return "the echo path moved (audio xrun): the echo canceller re-learns"


@dataclass(frozen=True, kw_only=True)
class EchoLeaked(ApplianceEvent):
    """The trusted echo canceller let a loud remnant of the agent's echo through (it took it down,
    but not far enough for a loud echo): muted again until it has re-learned."""

    name: ClassVar[str] = "aec_leak"
    logger: ClassVar[str] = "appliance.audio.pipeline"
    withdrawn: int  # times so far

    def message(self) -> str:
        return "the agent's echo leaks through the echo canceller: muted while it re-learns"


@dataclass(frozen=True, kw_only=True)
class EchoHeardByModel(ApplianceEvent):
    """The model reported speech while the agent spoke, and what it heard was the agent's own echo:
    the rest of the conversation gates the microphone while the agent speaks, like `gate`."""

    name: ClassVar[str] = "aec_self_interruption"
    logger: ClassVar[str] = "appliance.audio.pipeline"
    level: ClassVar[int] = logging.WARNING
    erle_db: float
    loudest_rms: int
    correlation: float

    def message(self) -> str:
        return "the model heard the agent's own echo: gating the microphone for the rest of the conversation"


@dataclass(frozen=True, kw_only=True)
class EchoNotConverging(ApplianceEvent):
    """The echo canceller has heard `learned_s` of the agent's speech and still does not cancel it
    (once per learning): `aec` keeps gating the microphone while the agent speaks, like `gate`."""

    name: ClassVar[str] = "aec_not_converging"
    logger: ClassVar[str] = "appliance.audio.pipeline"
    level: ClassVar[int] = logging.WARNING
    learned_s: float
    erle_db: float
    residual_rms: int

    def message(self) -> str:
        return (f"the echo canceller has not converged after {self.learned_s:g} s of the agent's speech "
                f"(echo only {self.erle_db:g} dB down): the microphone stays gated while the agent speaks. "
                "If the echo lags the speaker by more than APPLIANCE_AUDIO__AEC_TAIL_MS, raise it or set "
                "APPLIANCE_AUDIO__AEC_REFERENCE_DELAY_MS")


@dataclass(frozen=True, kw_only=True)
class Recovered(ApplianceEvent):
    name: ClassVar[str] = "recovered"

    def message(self) -> str:
        return "audio devices are back"


@dataclass(frozen=True, kw_only=True)
class MuteChanged(ApplianceEvent):
    """Mute switched on or off (button, device API, restored at start); kept across restarts."""

    name: ClassVar[str] = "mute"
    muted: bool
    reason: str | None = None

    def message(self) -> str:
        return "muted" if self.muted else "unmuted"


@dataclass(frozen=True, kw_only=True)
class VolumeChanged(ApplianceEvent):
    name: ClassVar[str] = "volume"
    volume: int

    def message(self) -> str:
        return f"volume {self.volume} %"


Subscriber = Callable[[ApplianceEvent], None]


class EventBus:
    """Publishes each event to every subscriber, in subscription order, on the event-loop thread.

    A subscriber must be quick and must not block (a slow consumer keeps its own bounded queue).
    One that raises is logged and skipped; it never breaks the appliance or the other subscribers.
    `publish` from another thread hops onto the loop given to `bind_loop`.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: ApplianceEvent) -> None:
        if self._loop is not None and self._loop_thread != threading.get_ident() and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._deliver, event)
                return
            except RuntimeError:  # the loop closed just now (shutdown): deliver here rather than lose it
                pass
        self._deliver(event)

    def _deliver(self, event: ApplianceEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.name)


def log_subscriber(event: ApplianceEvent) -> None:
    """The log line of an event: the JSON log's `event` and fields are the event's own."""
    logging.getLogger(event.logger).log(event.level, event.message(), extra={"event": event.name, **event.fields()})
