"""Learning from the wake word's mistakes: an event-stream subscriber, so no conversation code changes.

* A wake after which nobody says anything (no user ``transcript`` before ``conversation_end`` with
  ``idle_timeout``), or that is ended by the button or the API within ``CANCEL_S``, was probably a
  false wake: its embedding window becomes a negative of the personal layer (a veto of replays of
  that sound, and the personal verifiers retrained with it).
* A near miss (a stock score below the threshold) followed within a few seconds by a wake of the same
  voice was probably the phrase said too softly: with ``wake.learning=all`` it becomes a positive of
  that profile (the detector notices it, ``ProfileStream``; this module keeps it).

Why ``personal`` is the default: the stock rule is left as it is, so a voice that is not enrolled
wakes exactly as before, and a wrong lesson can only make a personal verifier stricter, never add a
wake. ``all`` adds missed-wake positives (a wrong one could add false wakes) and lets learned false
wakes veto the stock rule too (a wrong one could cost a real wake), so it is chosen, not given.
Bounded (``LEARNED_LIMIT`` per kind, oldest dropped), logged as ``wake_learned`` events, counted in
``appliance_wakes_learned``, undone by ``appliance wakeword forget-learning``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

from appliance.enrolment_events import ProfilesReloaded
from appliance.events import ApplianceEvent, ConversationEnded, EventBus, TranscriptLine, Wake, WakeLearned
from appliance.store import Store, StoreError
from appliance.triggers.enrolment import shipped_negatives, train_verifier
from appliance.triggers.profiles import LearnedExample, ProfileStore, layers_from
from appliance.triggers.wakeword import WakeWordDetector

__all__ = ["CANCEL_S", "WakeLearning", "attach_wake_profiles", "retrain_profiles"]

log = logging.getLogger("appliance.wake_learning")
CANCEL_S = 4.0  # a conversation ended by hand this soon after its wake was not wanted
OTHER_WRITERS_S = 2.0  # how often a running appliance looks for another process's changes (the CLI's)


@dataclass(slots=True)
class _Open:
    """The conversation a wake word started, as far as learning cares."""

    example: LearnedExample
    woke_at: float
    user_spoke: bool = False


class WakeLearning:
    """Subscribes to the event bus; writes what it learns to the store and refreshes the detector."""

    def __init__(self, detector: WakeWordDetector, profiles: ProfileStore, events: EventBus,
                 mode: str = "personal") -> None:
        self.detector = detector
        self.profiles = profiles
        self.events = events
        self.mode = mode
        self._open: _Open | None = None
        self._retrain_lock = threading.Lock()
        self._loaded: tuple[object, ...] | None = None  # the profiles' fingerprint the detector runs on
        self.retrained = threading.Event()  # set after each refresh of the detector (tests wait on it)
        self.unsubscribe = events.subscribe(self.on_event)

    def refresh(self) -> None:
        """Load the profiles and what was learned into the detector (after enrolment, forget, learning)."""
        with self._retrain_lock:
            self._load()

    def _load(self) -> None:
        self._loaded = self.profiles.fingerprint()
        self.detector.use_profiles(layers_from(self.profiles, self.mode))

    async def follow_other_writers(self, every_s: float = OTHER_WRITERS_S) -> None:
        """Apply what another process changed in the data directory (`appliance wakeword enroll`,
        `forget`, `forget-learning`, e.g. through `docker exec`) without a restart. Only a commit by
        another connection moves `data_version`, so the check costs one pragma while nothing changes."""
        store = self.profiles.store
        seen: int | None = None  # the first look compares fingerprints, as after any change
        failing = False
        while True:
            try:
                if (version := store.data_version()) != seen:
                    names = await asyncio.to_thread(self._reload_if_changed)
                    seen, failing = version, False
                    if names is not None:
                        self.events.publish(ProfilesReloaded(profiles=names))
            except StoreError as exc:  # a damaged or vanished database: said once, retried until it works
                if not failing:
                    log.warning("wake-word profiles could not be reloaded: %s", exc,
                                extra={"event": "wake_profiles_failed"})
                failing = True
            await asyncio.sleep(every_s)

    def _reload_if_changed(self) -> list[str] | None:
        """The profiles' names once reloaded; None when they are what the detector runs on already."""
        with self._retrain_lock:
            if self.profiles.fingerprint() == self._loaded:
                return None  # another table changed (memory, timers), or this process's own write
            self._load()
            return [str(p["name"]) for p in self.profiles.summary()]

    def on_event(self, event: ApplianceEvent) -> None:
        if self.mode == "off":
            return
        if isinstance(event, Wake) and event.source == "wakeword" and not event.barge_in:
            self._take_missed_wakes()
            last = self.detector.profile_stream.last_wake
            self._open = None if last is None else _Open(last, time.monotonic())
        elif isinstance(event, TranscriptLine) and event.role == "user" and self._open is not None:
            self._open.user_spoke = True
        elif isinstance(event, ConversationEnded) and self._open is not None:
            opened, self._open = self._open, None
            quick = time.monotonic() - opened.woke_at <= CANCEL_S and event.reason in ("button", "api")
            if not opened.user_spoke and (event.reason == "idle_timeout" or quick):
                self.learn(opened.example)

    def _take_missed_wakes(self) -> None:
        pending = self.detector.profile_stream.pending
        while pending:
            example = pending.popleft()
            if self.mode == "all":
                self.learn(example)

    def learn(self, example: LearnedExample) -> None:
        """Keep one example, say so, and retrain the profiles it concerns in a worker thread."""
        if example.kind == "false_wake" and self.mode != "all" and not self.detector_has_profiles():
            return  # nothing personal to teach, and the stock rule is not ours to change in this mode
        try:
            self.profiles.add_learned(example)
        except StoreError as exc:
            log.warning("wake word could not keep what it learned: %s", exc,
                        extra={"event": "wake_learn_failed"})
            return
        self.events.publish(WakeLearned(kind=example.kind,  # type: ignore[arg-type]
                                        profile=example.profile))
        threading.Thread(target=self._retrain, args=(example.model,), name="wake-learning", daemon=True).start()

    def detector_has_profiles(self) -> bool:
        return bool(self.profiles.summary())

    def _retrain(self, model: str) -> None:
        """Retrain every profile of ``model`` with what was learned (a few seconds of numpy), then swap
        the detector's layers whole. The veto of the new example is in effect after the swap."""
        with self._retrain_lock:
            try:
                self.detector.use_profiles(layers_from(self.profiles, self.mode))  # the veto, at once
                retrain_profiles(self.profiles, self.mode, model)
                self._load()
            except (StoreError, ValueError) as exc:
                log.warning("wake word could not retrain its profiles: %s", exc,
                            extra={"event": "wake_learn_failed"})
            finally:
                self.retrained.set()


def retrain_profiles(profiles: ProfileStore, mode: str, model: str | None = None) -> int:
    """Retrain the personal verifiers (of ``model``, or all) from their enrolment embeddings and what is
    learned now (nothing after ``forget-learning``: back to the enrolled verifier). Blocking; how many."""
    others = shipped_negatives()
    done = 0
    for profile in profiles.load():
        if model is not None and profile.model != model:
            continue
        learned_negatives = profiles.learned(profile.model, "false_wake", profile.name) if mode != "off" else None
        verifier = train_verifier(
            profile.positives, profile.own_negatives,
            learned_negatives if learned_negatives is not None else others[:0], others,
            profiles.learned(profile.model, "missed_wake", profile.name) if mode == "all" else None)
        profiles.replace_verifier(profile.name, verifier)
        done += 1
    return done


def attach_wake_profiles(detector: object, store: Store, events: EventBus, mode: str) -> WakeLearning | None:
    """Wire the household's profiles and the learning loop to a running appliance (one line in app.py).
    Nothing happens for a detector that is not the wake-word detector (tests, push-to-talk only)."""
    if not isinstance(detector, WakeWordDetector):
        return None
    learning = WakeLearning(detector, ProfileStore(store), events, mode)
    try:
        learning.refresh()
    except StoreError as exc:
        log.warning("wake-word profiles could not be loaded: %s", exc, extra={"event": "wake_profiles_failed"})
    return learning
