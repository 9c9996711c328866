"""Enrolment from the device: the guided takes of "teach it my voice", trained into a profile the
running wake word uses at once.

State ``enrolling`` (the wake word is paused: ``Controls.wake_word`` acts only when idle). For each
take: 1.5 s of the room's background (for augmentation; the person is waiting for the chime),
the wake earcon as "say it now", an ``enrol_prompt`` event, ``TAKE_S`` of the capture pipeline's
model-rate audio (the same sink a conversation reads), the take checked (``check_take``) and an
``enrol_take`` event. A refused take is asked again under the same number; ``MAX_BAD_IN_A_ROW``
refusals in a row end it. Then ``train_profile`` in a worker thread, the profile saved through
``ProfileStore`` and loaded into the running detector (``WakeLearning.refresh``), and ``enrolled``.
A stop command or a button press cancels (``enrol_failed``, reason ``cancelled``), mute cancels
(reason ``muted``), an audio fault ends it; each goes back to where the appliance rests. The takes'
audio is kept only with ``wake.keep_enrolment_audio``.

The voice tool ("learn my voice") asks for an enrolment after the conversation: ``enrol_later``
keeps the request and starts it, through the same checks, when that conversation ends in idle (it is
dropped, with ``enrol_failed``, when it ends muted or in an error).

Threads: everything here runs on the event loop, except the engine load, the take checks, training
and saving, which run in the loop's default executor one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .audio.formats import MODEL_RATE, WAKE_RATE
from .enrolment_events import CANCELLED, EnrolFailed, Enrolled, EnrolPrompt, EnrolTake
from .events import ApplianceEvent, EventBus, StateChanged
from .state import CONVERSATION_STATES, State, StateMachine
from .store import Store, StoreError

if TYPE_CHECKING:
    from .audio.pipeline import MicPipeline
    from .audio.playback import Player
    from .controls import Controls
    from .indicators.earcons import Earcons
    from .settings import Settings
    from .triggers.engines.oww import OpenWakeWordEngine
    from .triggers.enrolment import TakeCheck, TrainedProfile

log = logging.getLogger("appliance.enrolment")

DEFAULT_TAKES = 5
MIN_TAKES = 3  # as enrolment.MIN_TAKES (that module loads the wake-word engine: imported when needed)
MAX_TAKES = 10
TAKE_S = 3.0  # recorded after each chime: the phrase said at an easy pace, and a late start
BACKGROUND_S = 1.5  # the room before each chime (3 takes give more than one 3.5 s padded take: augment uses it)
MAX_BAD_IN_A_ROW = 3
MIC_SILENT_S = 2.0  # no audio from the pipeline this long while recording: the microphone failed
QUIET_WAIT_S = 5.0  # at most this long for the speaker to finish (the end of a conversation's goodbye)
AUDIO_FAILED = "the audio devices failed"


class EnrolmentHost(Protocol):
    """What the running appliance offers the flow (``Appliance`` provides it)."""

    settings: Settings
    state: StateMachine
    events: EventBus
    store: Store
    detector: Any
    wake_learning: Any  # triggers.learning.WakeLearning, or None without the wake-word detector
    earcons: Earcons
    controls: Controls

    @property
    def pipeline(self) -> MicPipeline | None: ...

    @property
    def player(self) -> Player | None: ...


class _Failed(Exception):
    """Enrolment cannot go on; the message is ``enrol_failed``'s reason."""


def phrase_of(model: str) -> str:
    return model.replace("_", " ")


class EnrolmentFlow:
    def __init__(self, host: EnrolmentHost) -> None:
        self._host = host
        self._task: asyncio.Task[None] | None = None
        self._reason = CANCELLED
        self._committing = False  # saving: too late to cancel
        self._leaving = False  # the flow itself is leaving ``enrolling``
        self._pipeline: MicPipeline | None = None  # whose sink is open
        self._later: tuple[str, int] | None = None  # (name, takes) asked for by voice
        host.events.subscribe(self._on_event)

    # -- what the commands ask (controls.py checks the state first) -------------------------------
    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    def model(self) -> tuple[str | None, str | None]:
        """(the openWakeWord model to enrol against, or None and why not)."""
        detector = self._host.detector
        engines: dict[str, str] = getattr(detector, "engines", {}) if detector is not None else {}
        if not engines or self._host.wake_learning is None:
            return None, "the wake word is not running here, so there is no voice to learn it for"
        for name, engine in engines.items():
            if engine == "openwakeword":
                return name, None
        models = ",".join(engines)
        return None, (f"the wake models ({models}) have no openWakeWord model to enrol against: a personal "
                      "verifier reads openWakeWord's speech embeddings, which microWakeWord models do not "
                      f"compute. Add one to enrol, e.g. APPLIANCE_WAKE__MODELS=hey_jarvis,{models}")

    def _spec_of(self, model: str) -> str:
        """The configured spec (a bundled name or a file path) of the detector's model ``model``."""
        for spec in self._host.settings.wake.models:
            spec = spec.strip()
            if not spec.startswith("micro:") and model in (spec, Path(spec).stem):
                return spec
        return model

    def problem(self, name: str, takes: int) -> str | None:
        """Why an enrolment of ``name`` from ``takes`` takes cannot start (None: it can)."""
        model, why = self.model()
        if model is None:
            return why
        from .triggers.profile_cli import _valid_name  # the CLI's rule (its module loads the wake-word engine)

        if problem := _valid_name(name):
            return problem
        if not MIN_TAKES <= takes <= MAX_TAKES:
            return f"takes must be {MIN_TAKES} to {MAX_TAKES} ({DEFAULT_TAKES} are best), got {takes}"
        if self._host.pipeline is None:
            return "the audio devices are reopening"
        return None

    def start(self, name: str, takes: int) -> dict[str, Any]:
        """Begin (``problem`` said it can); the values the ack carries."""
        model, _ = self.model()
        assert model is not None
        self._later = None
        self._reason = CANCELLED
        self._host.state.to(State.ENROLLING, reason="enrol")
        self._task = asyncio.ensure_future(self._run(name.strip(), takes, model))
        return {"name": name.strip(), "takes": takes, "phrase": phrase_of(model)}

    def cancel(self, reason: str = CANCELLED) -> bool:
        """Stop the enrolment in progress (False when there is none, or it is being saved)."""
        if not self.active or self._committing:
            return False
        assert self._task is not None
        self._reason = reason
        self._close_sink()  # the microphone is not recorded a moment longer (mute's promise)
        self._task.cancel()
        return True

    def enrol_later(self, name: str, takes: int = DEFAULT_TAKES) -> dict[str, Any]:
        """Start this enrolment when the conversation in progress ends in idle (the voice tool)."""
        model, _ = self.model()
        self._later = (name.strip(), takes)
        return {"name": name.strip(), "takes": takes, "phrase": phrase_of(model or ""), "after_conversation": True}

    def profiles(self) -> list[dict[str, object]]:
        """Names and take counts only."""
        from .triggers.profiles import ProfileStore

        return [{"name": p["name"], "takes": p["takes"]} for p in ProfileStore(self._host.store).summary()]

    def forget(self, name: str) -> bool:
        """Delete a profile and stop waking through it; False when there is none of that name."""
        from .triggers.profiles import ProfileStore

        gone = ProfileStore(self._host.store).forget(name.strip())
        if gone and self._host.wake_learning is not None:
            self._host.wake_learning.refresh()
        return gone

    # -- the flow ---------------------------------------------------------------------------------
    def _on_event(self, event: ApplianceEvent) -> None:
        if not isinstance(event, StateChanged):
            return
        if event.previous == State.ENROLLING and not self._leaving and self.active and not self._committing:
            self.cancel(AUDIO_FAILED if event.state == State.ERROR else f"interrupted ({event.state})")
        elif (self._later is not None and State(event.previous) in CONVERSATION_STATES
              and State(event.state) not in CONVERSATION_STATES):
            if event.state == State.IDLE:  # the conversation that asked for it is over: start (not inside .to())
                asyncio.get_running_loop().call_soon(self._start_later)
            else:
                name, _ = self._later
                self._later = None
                reason = f"not started: the appliance is {event.state}"
                self._host.events.publish(EnrolFailed(profile=name, reason=reason))

    def _start_later(self) -> None:
        later, self._later = self._later, None
        if later is None:
            return
        name, takes = later
        ack = self._host.controls.enroll(name, takes)  # the same checks as a command (muted, busy, ...)
        if not ack.ok:
            self._host.events.publish(EnrolFailed(profile=name, reason=str(ack.error)))

    async def _run(self, name: str, of: int, model: str) -> None:
        host = self._host
        loop = asyncio.get_running_loop()
        outcome: ApplianceEvent
        try:
            engine = await loop.run_in_executor(None, _load_engine, self._spec_of(model))
            good, background = await self._takes(name, of, model, engine)
            trained: TrainedProfile = await loop.run_in_executor(None, _train, engine, good, model, background)
            self._committing = True
            keep = good if host.settings.wake.keep_enrolment_audio else None
            await loop.run_in_executor(None, self._save, name, model, trained, keep)
            outcome = Enrolled(profile=name, takes=trained.takes, train_s=round(trained.train_s, 1))
        except asyncio.CancelledError:
            outcome = EnrolFailed(profile=name, reason=self._reason)
        except _Failed as exc:
            outcome = EnrolFailed(profile=name, reason=str(exc))
        except StoreError as exc:
            outcome = EnrolFailed(profile=name, reason=f"the profile could not be saved: {exc}")
        except (ValueError, OSError) as exc:  # EnrolmentError, a model file that cannot be read
            outcome = EnrolFailed(profile=name, reason=f"training failed: {exc}")
        except Exception as exc:  # never left in ``enrolling``: the wake word would stay paused
            log.exception("enrolment failed", extra={"event": "enrol_crashed"})
            outcome = EnrolFailed(profile=name, reason=f"enrolment failed: {type(exc).__name__}: {exc}")
        finally:
            self._close_sink()
            self._committing = False
        if host.state.state == State.ENROLLING:
            self._leaving = True
            try:
                host.state.to(host.controls.rest_state(), reason=outcome.name)
            finally:
                self._leaving = False
        host.events.publish(outcome)

    async def _takes(self, name: str, of: int, model: str, engine: OpenWakeWordEngine
                     ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The good takes and the room's background between them."""
        loop = asyncio.get_running_loop()
        await self._speaker_quiet()
        good: list[np.ndarray] = []
        room: list[np.ndarray] = []
        bad = 0
        while len(good) < of:
            number = len(good) + 1
            room.append(await self._record(BACKGROUND_S))
            await self._chime()
            self._host.events.publish(EnrolPrompt(profile=name, take=number, of=of))
            take = await self._record(TAKE_S)
            check: TakeCheck = await loop.run_in_executor(None, _check, engine, take, model)
            self._host.events.publish(EnrolTake(profile=name, take=number, ok=check.ok, reason=check.reason,
                                                score=check.phrase_score))
            if check.ok:
                good.append(take)
                bad = 0
                continue
            bad += 1
            if bad >= MAX_BAD_IN_A_ROW:
                raise _Failed(f"{bad} takes in a row were refused (the last: {check.reason})")
        background = np.concatenate(room)
        # Digital silence (a muted input, a test card) teaches nothing: augment with noise alone.
        return good, background if float(np.std(background)) >= 1.0 else None

    async def _speaker_quiet(self) -> None:
        player = self._host.player
        deadline = time.monotonic() + QUIET_WAIT_S
        while player is not None and player.queued_ms > 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _chime(self) -> None:
        """The wake earcon, waited for until it has left the speaker (it must not be in the take)."""
        player = self._host.player
        length = self._host.earcons.play("wake", player)
        if length and player is not None:
            await asyncio.sleep(length + player.latency + 0.05)

    async def _record(self, seconds: float) -> np.ndarray:
        """``seconds`` of the pipeline's model-rate audio captured from now, as 16 kHz int16."""
        pipeline = self._host.pipeline
        if pipeline is None:
            raise _Failed(AUDIO_FAILED)
        started = time.monotonic()
        sink = pipeline.open_sink(max_seconds=seconds + MIC_SILENT_S)
        self._pipeline = pipeline
        need = round(seconds * MODEL_RATE)
        parts: list[np.ndarray] = []
        got = 0
        try:
            while got < need:
                try:
                    captured_at, block = await asyncio.wait_for(sink.queue.get(), MIC_SILENT_S)
                except TimeoutError:
                    raise _Failed(f"{AUDIO_FAILED}: no sound from the microphone for {MIC_SILENT_S:.0f} s") from None
                if captured_at < started:  # the look-back ring: from before the chime ended
                    continue
                samples = np.frombuffer(block, np.int16)
                parts.append(samples)
                got += len(samples)
        finally:
            self._close_sink()
        return _to_wake_rate(np.concatenate(parts)[:need])

    def _close_sink(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.close_sink()

    def _save(self, name: str, model: str, trained: TrainedProfile, audio: list[np.ndarray] | None) -> None:
        """Blocking (a worker thread): the profile into the data directory, then into the detector."""
        from .triggers.profiles import ProfileStore

        ProfileStore(self._host.store).save(name, model, trained, audio)
        self._host.wake_learning.refresh()


def _to_wake_rate(audio24: np.ndarray) -> np.ndarray:
    import soxr

    with contextlib.suppress(ValueError):
        out = soxr.resample(audio24.astype(np.float32), MODEL_RATE, WAKE_RATE)
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)
    return np.zeros(0, np.int16)


def _load_engine(spec: str) -> OpenWakeWordEngine:
    """Its own engine (the detector's belongs to the microphone thread): the model's LiteRT interpreters."""
    from .triggers.engines.oww import OpenWakeWordEngine
    from .triggers.wake_models import resolve_model

    path = resolve_model(spec)
    return OpenWakeWordEngine.load({path.stem: path})


def _check(engine: OpenWakeWordEngine, take: np.ndarray, model: str) -> TakeCheck:
    from .triggers.enrolment import check_take, take_windows

    scores, _ = take_windows(engine, take, model)
    return check_take(take, float(scores.max()), phrase_of(model))


def _train(engine: OpenWakeWordEngine, takes: list[np.ndarray], model: str,
           background: np.ndarray | None) -> TrainedProfile:
    from .triggers.enrolment import train_profile

    return train_profile(engine, takes, model, background=background)
