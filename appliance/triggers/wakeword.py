"""Local wake-word detection: openWakeWord's models on the project's own LiteRT pipeline, nothing downloaded.

Audio in: 16 kHz mono int16 blocks of any length. The engine (``engines/oww.py``: the feature
pipeline of ``features.py`` plus one classifier per model) takes 1280-sample (80 ms) frames; each
frame gives one score per model in [0, 1]. A model "wakes" when its score reaches its threshold, then
stays quiet for ``refractory_s`` seconds *and* until its score has dropped below the threshold again,
so one utterance wakes once (``WakeGate``). A bundled model that ships a verifier (``hey_jarvis``, see
``verifier.py``) wakes by the rule that ships in the verifier's file (``VerifierRule``: the stock
score, the verifier's, or both, held for a few frames in a row).

A ``micro:NAME`` model runs on microWakeWord instead (``engines/micro.py``), with the same wake rule,
refractory and twin; its default threshold is the probability cutoff its manifest ships, and it has
no verifier. ``engines.EngineSet`` runs mixed lists.

Model files are resolved in ``wake_models.py``; WAV files and the ``appliance wakeword`` command
are in ``wake_scan.py``.

The detector holds no locks: create it and call it from one worker thread or one asyncio task. Its
scores are deterministic: it starts, and resets, as if it had heard silence (see ``features.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.audio.formats import WAKE_RATE
from appliance.triggers.engines import EngineSet
from appliance.triggers.features import FRAME_SAMPLES
from appliance.triggers.native_stderr import litert_info_dropped
from appliance.triggers.profiles import VOICE_MATCH, PersonalLayer, ProfileStream
from appliance.triggers.verifier import (
    FEATURE_FRAMES,
    EmbeddingVerifier,
    VerifierError,
    VerifierRule,
    bundled_verifier,
)
from appliance.triggers.wake_models import (
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    WakeWordModelError,
    is_micro,
    micro_model_name,
    resolve_micro_model,
    resolve_model,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "FRAME_SAMPLES",
    "Detection",
    "WakeGate",
    "WakeWordDetector",
]

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class Detection:
    """One wake event.

    ``score`` is the stock model's score. ``at_sample`` counts 16 kHz samples fed to the detector
    since it was created or reset, up to the end of the 80 ms frame that completed the decision.
    """

    model: str
    score: float
    at_sample: int
    verifier_score: float | None = None  # the verifier's score, for models that have one
    stock_fired: bool = True  # the stock score alone reached the threshold (else the verifier decided)
    profile: str | None = None  # the enrolled profile whose personal verifier made or confirmed the wake

    @property
    def at_s(self) -> float:
        return self.at_sample / WAKE_RATE


class WakeGate:
    """One model's wake decision over its frames: a hit must hold ``confirm`` frames in a row, then
    the model wakes once, stays quiet for ``refractory_samples`` and until a frame misses again."""

    def __init__(self, refractory_samples: int) -> None:
        self._refractory = refractory_samples
        self.reset()

    def reset(self) -> None:
        self._above = 0
        self._armed = True
        self._last_wake: int | None = None

    def step(self, hit: bool, at_sample: int, confirm: int = 1) -> bool:
        """The frame ending at ``at_sample`` did (``hit``) or did not count; does the model wake now?"""
        if not hit:
            self._armed = True
            self._above = 0
            return False
        self._above += 1
        if self._above < confirm:
            return False
        last = self._last_wake
        if not self._armed or (last is not None and at_sample - last < self._refractory):
            return False
        self._armed = False
        self._last_wake = at_sample
        return True


class WakeWordDetector:
    """Streaming wake-word detector over one or more openWakeWord models.

    ``models``: bundled names or model file paths; a model's name (for thresholds, scores and
    detections) is its file stem, e.g. ``hey_jarvis``. ``thresholds``: one value for all, or a
    mapping from model name (or the spec as given) to threshold; missing ones (all, for None) default to 0.5
    (openWakeWord) or the model's own probability cutoff (microWakeWord, ``micro:NAME``).
    ``seed`` is accepted and ignored: it seeded openWakeWord's noisy start, and this pipeline starts
    from silence.
    """

    def __init__(
        self,
        models: Sequence[str] = (DEFAULT_MODEL,),
        thresholds: Mapping[str, float] | float | None = None,
        refractory_s: float = 2.0,
        *,
        seed: int | None = None,
        verify: bool = True,
    ) -> None:
        del seed  # see the docstring
        if isinstance(models, str):
            models = [models]
        if not models:
            raise ValueError("at least one wake-word model is needed")
        if refractory_s < 0:
            raise ValueError("refractory_s must be >= 0")
        paths: dict[str, Path] = {}
        spec_of: dict[str, str] = {}
        for spec in models:
            path = resolve_micro_model(spec) if is_micro(spec) else resolve_model(spec)
            name = micro_model_name(path) if is_micro(spec) else path.stem
            if name in paths:
                raise WakeWordModelError(
                    f"two wake-word models share the name {name!r}: {paths[name]} and {path}"
                )
            paths[name] = path
            spec_of[name] = spec
        self._refractory_samples = int(round(refractory_s * WAKE_RATE))
        with litert_info_dropped():  # LiteRT's first interpreter prints an INFO line to fd 2
            self._engine = EngineSet.load({n: p for n, p in paths.items() if not is_micro(spec_of[n])},
                                          {n: p for n, p in paths.items() if is_micro(spec_of[n])},
                                          tuple(paths), FEATURE_FRAMES)
        defaults = dict.fromkeys(paths, DEFAULT_THRESHOLD) | (self._engine.micro.cutoffs if self._engine.micro else {})
        self._thresholds = self._resolve_thresholds(thresholds, spec_of, defaults)
        self._names: tuple[str, ...] = tuple(paths)
        self._verifiers = self._load_verifiers(spec_of) if verify else {}
        self._gates = self._new_gates()
        self._pending: np.ndarray = np.zeros(0, dtype=np.int16)
        self._samples_fed = 0  # in whole frames; see samples_fed
        self._scores: dict[str, float] = {}
        self._verifier_scores: dict[str, float] = {}
        self._personal: dict[str, PersonalLayer] = {}  # enrolled profiles per model (profiles.py)
        self.profile_stream = ProfileStream()
        self.reset()

    def use_profiles(self, layers: Mapping[str, PersonalLayer]) -> None:
        """Wake also through these personal verifiers (replaced whole, so another thread may call it)."""
        self._personal = {model: layer for model, layer in layers.items() if model in self._names and layer.active}

    def _new_gates(self) -> dict[str, WakeGate]:
        return {name: WakeGate(self._refractory_samples) for name in self._names}

    @staticmethod
    def _resolve_thresholds(
        thresholds: Mapping[str, float] | float | None, spec_of: Mapping[str, str], defaults: Mapping[str, float]
    ) -> dict[str, float]:
        if thresholds is None:
            thresholds = {}
        if isinstance(thresholds, int | float):
            out = dict.fromkeys(spec_of, float(thresholds))
        else:
            known = set(spec_of) | set(spec_of.values())
            unknown = sorted(set(thresholds) - known)
            if unknown:
                raise ValueError(
                    f"thresholds for unknown wake-word models {unknown}; models: {sorted(spec_of)}"
                )
            out = {
                name: float(thresholds.get(name, thresholds.get(spec, defaults[name])))
                for name, spec in spec_of.items()
            }
        for name, value in out.items():
            if not 0.0 < value < 1.0:  # as the settings say: a score of 1 is never reached
                raise ValueError(f"threshold for {name!r} must be between 0 and 1, got {value}")
        return out

    @staticmethod
    def _load_verifiers(spec_of: Mapping[str, str]) -> dict[str, EmbeddingVerifier]:
        """The bundled verifier of each bundled model that has one (custom model files have none)."""
        out: dict[str, EmbeddingVerifier] = {}
        for name, spec in spec_of.items():
            path = bundled_verifier(name) if spec.strip() in BUNDLED_MODELS else None
            if path is not None:
                try:
                    out[name] = EmbeddingVerifier.load(path)
                except VerifierError as exc:
                    raise WakeWordModelError(str(exc)) from exc
        return out

    def twin(self) -> WakeWordDetector:
        """A detector with the same models, thresholds and verifiers and its own streaming state (the
        appliance scores what its speaker plays with one, see ``self_wake.py``). It shares the loaded
        models with this one (read-only), so the same thread must run both."""
        twin = copy.copy(self)
        twin._engine = self._engine.fork()
        twin._gates = self._new_gates()
        twin.profile_stream = ProfileStream()
        twin.reset()
        return twin

    @property
    def verifier_rules(self) -> dict[str, VerifierRule]:
        """Each verified model's wake rule (as its verifier file ships it)."""
        return {name: verifier.rule for name, verifier in self._verifiers.items()}

    @property
    def verified(self) -> tuple[str, ...]:
        """Models that also consult a bundled verifier (see ``_step``)."""
        return tuple(self._verifiers)

    @property
    def models(self) -> tuple[str, ...]:
        """Model names, in the order given."""
        return self._names

    @property
    def engines(self) -> dict[str, str]:
        """Each model's engine: ``"openwakeword"`` or ``"microwakeword"``."""
        return self._engine.engine_of

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self._thresholds)

    @property
    def scores(self) -> dict[str, float]:
        """Score of each model for the latest complete 80 ms frame (0.0 before the first one)."""
        return dict(self._scores)

    @property
    def verifier_scores(self) -> dict[str, float]:
        """Verifier score of each verified model for the latest complete frame."""
        return dict(self._verifier_scores)

    @property
    def samples_fed(self) -> int:
        """16 kHz samples received since creation or the last ``reset()`` (including a partial frame)."""
        return self._samples_fed + len(self._pending)

    def process(self, samples_16k_int16: np.ndarray) -> list[Detection]:
        """Feed a block of 16 kHz mono audio (any length); return the wake events it completed.

        int16 is expected; floating-point input is taken as [-1, 1] and converted.
        """
        block = np.asarray(samples_16k_int16)
        if block.ndim != 1:
            block = block.reshape(-1)
        if block.dtype != np.int16:
            if np.issubdtype(block.dtype, np.floating):
                block = np.clip(block * 32768.0, -32768, 32767)
            block = block.astype(np.int16)
        if len(self._pending):
            block = np.concatenate((self._pending, block))
        n_frames = len(block) // FRAME_SAMPLES
        detections: list[Detection] = []
        for i in range(n_frames):
            frame = block[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            self._samples_fed += FRAME_SAMPLES
            detections.extend(self._step(frame))
        self._pending = block[n_frames * FRAME_SAMPLES :].copy()
        return detections

    def _step(self, frame: np.ndarray) -> list[Detection]:
        scores = self._engine.score_frame(frame)
        window = self._engine.features.window(FEATURE_FRAMES) if self._verifiers else None
        found: list[Detection] = []
        for name in self._names:
            score = scores[name]
            self._scores[name] = score
            threshold = self._thresholds[name]
            verifier = self._verifiers.get(name)
            verifier_score: float | None = None
            confirm = 1
            if verifier is None or window is None:
                hit = score >= threshold
            else:
                confirm = verifier.rule.confirm
                # The rule ships with the verifier (see VerifierRule): in noise and rooms the stock score
                # collapses where the verifier, trained there, still hears the wake word, and on near
                # misses the stock model fires where the verifier, trained on them, does not.
                verifier_score = verifier.score(window)
                self._verifier_scores[name] = verifier_score
                hit = verifier.rule.hit(score, verifier_score, threshold)
            layer = self._personal.get(name)
            profile: str | None = None
            if layer is not None:
                # An enrolled voice also wakes through its personal verifier, where the stock score reaches
                # the layer's floor (so it stays about the phrase); others meet the stock rule alone.
                personal_window = self._engine.features.window(FEATURE_FRAMES)
                profile, profile_score = layer.best(personal_window)
                personal_hit = layer.rule.hit(score, profile_score)
                if (hit or personal_hit) and layer.vetoed(personal_window) and (layer.veto_stock or not hit):
                    hit = personal_hit = False  # a replay of a learned false wake (learning.py)
                hit = hit or personal_hit
            woke = self._gates[name].step(hit, self._samples_fed, confirm)
            if layer is not None:
                voice = profile if profile_score >= VOICE_MATCH else None  # "the same voice", for learning
                self.profile_stream.frame(name, self._samples_fed, score, voice, personal_window, woke, WAKE_RATE)
            if woke:
                found.append(Detection(name, score, self._samples_fed, verifier_score,
                                       stock_fired=score >= threshold,
                                       profile=profile if layer is not None and (
                                           personal_hit or profile_score >= VOICE_MATCH) else None))
        return found

    def reset(self) -> None:
        """Forget all audio: feature buffers, pending samples, scores, refractory state, sample count."""
        self._engine.reset()
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples_fed = 0
        self._scores = dict.fromkeys(self._names, 0.0)
        self._verifier_scores = dict.fromkeys(self._verifiers, 0.0)
        for gate in self._gates.values():
            gate.reset()

    def embedding_window(self) -> np.ndarray:
        """The last 16 speech-embedding frames (16 x 96), the input every bundled model scores (a copy)."""
        return self._engine.embedding_window(FEATURE_FRAMES)

    def predict_frame(self, frame: np.ndarray) -> dict[str, float]:
        """The engine's scores for one 1280-sample int16 frame alone (benchmarks; bypasses the wake rule)."""
        return self._engine.score_frame(frame)
