"""The one command surface: start, stop, mute, volume, dismiss a ring, push-to-talk, announce, the wake
word, and enrolling the household's voices.

Every input is a thin adapter over these methods: the button (`button_actions.py`), the page and
API (`web/commands.py`), the agent's volume tools, the wake word (`Appliance` hands detections to
`wake_word`), and next MQTT. Each command checks the state here, once (muted, ringing, busy), and
answers with an `Ack`. `Appliance` keeps the lifecycle (devices, the loop, backoff) and offers it
through `Lifecycle`.

Mute and volume are kept in the data directory. When that write fails (a read-only SD card, a full
disk, a locked database) the command still takes effect and shows it: a person who presses mute
expects the microphone ignored now, whatever the card does. The failure is logged, the ack says
`saved: false`, and the value is written as soon as the store takes writes again. Refusing the mute
instead would leave a live wake word on a device whose owner asked for silence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .announcements.refusals import Refusals
from .announcements.text import clean_text
from .audio.pipeline import WakeDetection
from .conversation.outcomes import EndReason
from .enrolment_events import ProfileForgotten
from .enrolment_flow import DEFAULT_TAKES, EnrolmentFlow
from .events import ErrorRaised, EventBus, MuteChanged, TriggerSource, VolumeChanged, Wake
from .ringing import TimerRinger
from .state import CONVERSATION_STATES, State, StateMachine
from .store import KeptValues, Store, StoreError, StoreFault

if TYPE_CHECKING:
    from .announcements.queue import Announcer
    from .conversation.session import Conversation
    from .integrations.arbitration import Arbitration

log = logging.getLogger("appliance.controls")

SAVE_RETRY_S = 5.0  # an unsaved mute or volume is written again this often


@dataclass(frozen=True)
class Ack:
    """A command's answer: done or not (with why), and the values it left in effect."""

    ok: bool
    error: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


class Lifecycle(Protocol):
    """What the running appliance offers the commands (`Appliance` provides it)."""

    conversation: Conversation | None
    released_early: bool  # push-to-talk let go before the conversation existed

    def begin(self, event: Wake) -> bool:
        """Idle → waking (sink, chime, queued trigger). False when the audio devices are reopening."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...

    def answered_elsewhere(self) -> None:
        """Show that another device of the home answers this wake."""
        ...

    def apply_volume(self, percent: int) -> None: ...


def wake_event(detection: WakeDetection, *, barge_in: bool = False) -> Wake:
    """A wake word's event: the stock model's score and, where one ran, the verifier's."""
    verifier = detection.verifier_score
    return Wake(
        source="wakeword",
        model=detection.model,
        score=round(float(detection.score), 3),
        verifier_score=None if verifier is None else round(float(verifier), 3),
        barge_in=True if barge_in else None,
        profile=getattr(detection, "profile", None),
    )


class Controls:
    """Threads: every method runs on the event-loop thread (inputs on other threads hop there first)."""

    def __init__(
        self, state: StateMachine, events: EventBus, store: Store, host: Lifecycle, default_volume: int
    ) -> None:
        self.state = state
        self.events = events
        self._host = host
        self.ringer: TimerRinger | None = None  # set once the ringer exists (it asks `rest_state`)
        self.announcer: Announcer | None = None  # likewise the announcements' queue
        # One answer per home (integrations/arbitration.py): set while an MQTT broker is configured.
        self.arbitration: Arbitration | None = None
        self.outranked = False  # this wake's conversation is to end as soon as it exists (see _outranked)
        self.enrolment: EnrolmentFlow | None = None  # learning a voice from the device (set by Appliance)
        # Mute is a privacy promise: it survives faults and restarts (kept in the data directory).
        self._muted = bool(store.get("muted", False))
        self._volume = int(store.get("volume", default_volume))
        self._kept = KeptValues(store, on_fault=self._not_saved, on_saved=self._saved)
        self._refusals = Refusals(self.events.publish)

    # -- what the commands left in effect ------------------------------------------------------
    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def volume(self) -> int:
        return self._volume

    @property
    def conversation(self) -> Conversation | None:
        return self._host.conversation

    @property
    def unsaved(self) -> list[str]:
        """Settings in effect that the data directory does not hold yet (a failed write)."""
        return self._kept.unsaved

    def rest_state(self) -> State:
        """Where the appliance rests between conversations: idle, or muted when mute is on."""
        return State.MUTED if self._muted else State.IDLE

    # -- conversation ---------------------------------------------------------------------------
    def start(self, source: TriggerSource = "api") -> Ack:
        """As a button press when idle: start a conversation."""
        current = self.state.state
        if current != State.IDLE:
            return Ack(False, f"cannot start while {current.value}")
        if not self._host.begin(Wake(source=source)):
            return Ack(False, "the audio devices are reopening")
        return Ack(True)

    def stop(self, reason: EndReason = "api") -> Ack:
        """End the conversation in progress (or dismiss the announcement that plays, or cancel an enrolment)."""
        conversation = self._host.conversation
        if conversation is None and self.state.state == State.ANNOUNCING:
            return self.dismiss(reason)
        if conversation is None and self.enrolment is not None and self.enrolment.active:
            return self.cancel_enrolment()
        if conversation is None:
            return Ack(False, "no conversation in progress")
        conversation.end(reason)
        return Ack(True)

    def interrupt(self) -> Ack:
        """Stop the answer being spoken and listen (a barge-in)."""
        conversation = self._host.conversation
        if conversation is None or self.state.state not in (State.SPEAKING, State.THINKING):
            return Ack(False, "no answer to interrupt")
        self._host.spawn(conversation.barge_in())
        return Ack(True)

    def talk(self) -> Ack:
        """Push-to-talk pressed: open the person's turn (interrupting an answer)."""
        conversation = self._host.conversation
        if conversation is None or self.state.state not in CONVERSATION_STATES:
            return Ack(False, "no conversation in progress")
        if conversation.talk():  # the turn is open before anything else runs
            self._host.spawn(conversation.barge_in())
        return Ack(True)

    def commit(self) -> Ack:
        """Push-to-talk released: the turn is complete."""
        conversation = self._host.conversation
        if conversation is not None:
            conversation.release()
            return Ack(True)
        if self.state.state in (State.WAKING, State.CONNECTING):
            self._host.released_early = True  # applied once the conversation exists
            return Ack(True)
        return Ack(False, "no conversation in progress")

    def wake_word(self, detection: WakeDetection) -> None:
        """The microphone pipeline heard the wake word."""
        current = self.state.state
        if current == State.RINGING:
            self.dismiss("wakeword")
        elif current == State.IDLE:
            if self.arbitration is None:
                self._host.begin(wake_event(detection))
            else:  # the devices of one home answer once (a button press is never arbitrated)
                self._host.spawn(self._answer_if_chosen(self.arbitration, wake_event(detection)))
        elif current in (State.SPEAKING, State.THINKING) and self._host.conversation is not None:
            self.events.publish(wake_event(detection, barge_in=True))
            self.interrupt()
        # muted (the promise), or busy waking/connecting/listening: nothing to do

    async def _answer_if_chosen(self, arbitration: Arbitration, event: Wake) -> None:
        self.outranked = False
        if not await arbitration.should_answer(event.score or 0.0, self._outranked):
            self._host.answered_elsewhere()
        elif self.state.state == State.IDLE:  # nothing else (a button, a mute) came first while it waited
            self._host.begin(event)

    def take_outranked(self) -> bool:
        """Whether the conversation being made is to end at once (and forget it: asked once per conversation)."""
        outranked, self.outranked = self.outranked, False
        return outranked

    def _outranked(self, winner: str) -> None:
        """Another device of the home answers this wake too and heard it better: this one gives way
        (before its conversation exists, `outranked` tells the appliance to end it once made)."""
        if self._host.conversation is not None:
            self._host.conversation.end("answered_elsewhere")
        elif self.state.state in (State.WAKING, State.CONNECTING):
            self.outranked = True
        self._host.answered_elsewhere()

    # -- timers and announcements ------------------------------------------------------------------
    def dismiss(self, by: str) -> Ack:
        """Stop a ringing timer, or the announcement that plays (the next queued one follows)."""
        if self.state.state == State.ANNOUNCING and self.announcer is not None and self.announcer.dismiss(by):
            return Ack(True)
        if self.ringer is None or not self.ringer.dismiss(by):
            return Ack(False, "nothing is ringing")
        return Ack(True)

    def announce(self, text: object, source: str = "api") -> Ack:
        """Queue a text to chime and speak once nothing else is going on (announcements/queue.py).
        Muted or not: mute silences the microphone, and an announcement uses none. A refusal is an
        `announce` event too (`refused`, with why; a flood is summed: announcements/refusals.py)."""
        ack = self._queue_announcement(text, source)
        if not ack.ok:
            self._refusals.refused(source, len(text) if isinstance(text, str) else 0, ack.error)
        return ack

    def _queue_announcement(self, text: object, source: str) -> Ack:
        cleaned, error = clean_text(text)
        if cleaned is None:
            return Ack(False, error)
        if self.announcer is None:
            return Ack(False, "announcements are not available")
        ahead = self.announcer.waiting + (self.announcer.playing is not None)
        announcement, error = self.announcer.add(cleaned, source)
        if announcement is None:
            return Ack(False, error)
        return Ack(True, values={"announcement": announcement, "waiting": ahead})

    # -- the household's voices (enrolment_flow.py) ------------------------------------------------
    def enroll(self, name: str, takes: int = DEFAULT_TAKES) -> Ack:
        """Learn a voice from the device: guided takes of the wake phrase (events: enrol_prompt, ...)."""
        flow = self.enrolment
        if (refused := self._cannot_enrol()) is not None:
            return refused
        assert flow is not None
        if (problem := flow.problem(name, takes)) is not None:
            return Ack(False, problem)
        return Ack(True, values=flow.start(name, takes))

    def enroll_after_conversation(self, name: str, takes: int = DEFAULT_TAKES) -> Ack:
        """The voice tool: the same enrolment, started when the conversation in progress ends."""
        flow = self.enrolment
        if flow is None:
            return Ack(False, "enrolment is not available on this appliance")
        if flow.active:
            return Ack(False, "a voice is being enrolled already")
        if (problem := flow.problem(name, takes)) is not None:
            return Ack(False, problem)
        return Ack(True, values=flow.enrol_later(name, takes))

    def _cannot_enrol(self) -> Ack | None:
        current = self.state.state
        if self.enrolment is None:
            return Ack(False, "enrolment is not available on this appliance")
        if self._muted:
            return Ack(False, "cannot enrol while muted: unmute first")
        if current == State.ENROLLING or self.enrolment.active:
            return Ack(False, "a voice is being enrolled already")
        if current in CONVERSATION_STATES or current == State.WAKING:
            return Ack(False, "cannot enrol during a conversation: end it first")
        if current != State.IDLE:
            return Ack(False, f"cannot enrol while {current.value}")
        return None

    def cancel_enrolment(self) -> Ack:
        if self.enrolment is None or not self.enrolment.active:
            return Ack(False, "no enrolment in progress")
        if not self.enrolment.cancel():
            return Ack(False, "the voice is being saved: too late to cancel")
        return Ack(True)

    def profiles(self) -> Ack:
        """The enrolled voices: names and take counts only."""
        if self.enrolment is None:
            return Ack(True, values={"profiles": []})
        try:
            return Ack(True, values={"profiles": self.enrolment.profiles()})
        except StoreError as exc:
            return Ack(False, f"the profiles could not be read: {exc}")

    def forget_profile(self, name: str) -> Ack:
        """Delete an enrolled voice; the running wake word stops using it at once."""
        try:
            gone = self.enrolment is not None and self.enrolment.forget(name)
        except StoreError as exc:
            return Ack(False, f"the profile could not be deleted: {exc}")
        if not gone:
            return Ack(False, f"no enrolled voice named {name[:40]!r}")
        # Every open page and API client lists the voices: tell them all, not just the sender.
        self.events.publish(ProfileForgotten(profile=name.strip()))
        return Ack(True, values={"name": name})

    # -- mute and volume (kept in the data directory) -------------------------------------------
    def set_muted(self, muted: bool, reason: str = "api") -> Ack:
        """Mute: the wake word is ignored (a conversation in progress ends). Kept across restarts."""
        if muted != self._muted:
            self._muted = muted  # in effect now, whatever the store does (see the module's note)
            self._kept.put("muted", muted)
            self.events.publish(MuteChanged(muted=muted, reason=reason))
            current = self.state.state
            if muted:
                if current == State.IDLE:
                    self.state.to(State.MUTED, reason=reason)
                elif self._host.conversation is not None:
                    self._host.conversation.end("button" if reason == "button" else "api")
                elif current == State.ENROLLING and self.enrolment is not None:
                    self.enrolment.cancel("muted")  # the flow goes back to rest: muted
            elif current == State.MUTED:
                self.state.to(State.IDLE, reason="unmuted")
        return Ack(True, values=self._in_effect("muted", self._muted))

    def toggle_mute(self, reason: str) -> Ack:
        return self.set_muted(not self._muted, reason)

    def set_volume(self, percent: int) -> Ack:
        """Playback volume of answers and earcons, 0–100; kept across restarts."""
        volume = max(0, min(100, int(percent)))
        if volume != self._volume:
            self._volume = volume
            self._kept.put("volume", volume)
            self.events.publish(VolumeChanged(volume=volume))
        self._host.apply_volume(self._volume)
        return Ack(True, values=self._in_effect("volume", self._volume))

    def _in_effect(self, key: str, value: object) -> dict[str, Any]:
        """The value in effect, and `saved: False` while the data directory does not hold it."""
        return {key: value, "saved": False} if key in self.unsaved else {key: value}

    async def keep_saving(self) -> None:
        """Write what a failed write left unsaved, once the store takes writes again."""
        while True:
            await asyncio.sleep(SAVE_RETRY_S)
            if self._kept.unsaved:
                self._kept.flush()

    def _not_saved(self, keys: list[str], fault: StoreFault) -> None:
        self.events.publish(ErrorRaised(
            kind="store", retry_in_s=SAVE_RETRY_S,
            text=f"{' and '.join(keys)} not saved: {fault}; in effect until a restart, "
                 f"retrying every {SAVE_RETRY_S:.0f} s",
        ))

    @staticmethod
    def _saved(keys: list[str]) -> None:
        log.info("%s saved: the data directory takes writes again", " and ".join(keys),
                 extra={"event": "store_caught_up", "keys": keys})
