"""Local wake-word detection with openWakeWord (``.tflite`` models run by LiteRT, nothing downloaded).

Audio in: 16 kHz mono int16 blocks of any length. Internally openWakeWord is fed 1280-sample
(80 ms) frames; each frame gives one score per model in [0, 1]. A model "wakes" when its score
reaches its threshold, then stays quiet for ``refractory_s`` seconds *and* until its score has
dropped below the threshold again, so one utterance wakes once. A bundled model that ships a
verifier (``hey_jarvis``, see ``verifier.py``) wakes by the rule that ships in the verifier's file
(``VerifierRule``: the stock score, the verifier's, or both, held for a few frames in a row).

Model files are resolved in ``wake_models.py``; WAV files and the ``appliance wakeword`` command
are in ``wake_scan.py``.

The detector holds no locks: create it and call it from one worker thread or one asyncio task.

openWakeWord fills its feature buffers with random noise when it starts and on ``reset()``
(``numpy.random``, the global generator). Pass ``seed`` to make scores reproducible; the global
generator's state is saved and restored around those calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audio.formats import WAKE_RATE
from appliance.triggers.native_stderr import litert_info_dropped
from appliance.triggers.oww_loader import BUNDLED_MODELS, bundled_models_dir, load_model_class
from appliance.triggers.oww_memory import compact_streaming_memory
from appliance.triggers.verifier import (
    FEATURE_FRAMES,
    EmbeddingVerifier,
    VerifierError,
    VerifierRule,
    bundled_verifier,
)
from appliance.triggers.wake_models import DEFAULT_MODEL, WakeWordModelError, add_onnx_model, resolve_model

__all__ = [
    "DEFAULT_THRESHOLD",
    "FRAME_SAMPLES",
    "Detection",
    "WakeWordDetector",
]

FRAME_SAMPLES = 1280  # 80 ms: openWakeWord's step
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

    @property
    def at_s(self) -> float:
        return self.at_sample / WAKE_RATE


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed numpy's global generator for the duration (openWakeWord uses it), then restore it."""
    if seed is None:
        yield
        return
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


class WakeWordDetector:
    """Streaming wake-word detector over one or more openWakeWord models.

    ``models``: bundled names or model file paths; a model's name (for thresholds, scores and
    detections) is its file stem, e.g. ``hey_jarvis``. ``thresholds``: one value for all, or a
    mapping from model name (or the spec as given) to threshold; missing ones default to 0.5.
    """

    def __init__(
        self,
        models: Sequence[str] = (DEFAULT_MODEL,),
        thresholds: Mapping[str, float] | float = DEFAULT_THRESHOLD,
        refractory_s: float = 2.0,
        *,
        seed: int | None = None,
        verify: bool = True,
    ) -> None:
        if isinstance(models, str):
            models = [models]
        if not models:
            raise ValueError("at least one wake-word model is needed")
        if refractory_s < 0:
            raise ValueError("refractory_s must be >= 0")
        paths: dict[str, Path] = {}
        spec_of: dict[str, str] = {}
        for spec in models:
            path = resolve_model(spec)
            name = path.stem
            if name in paths:
                raise WakeWordModelError(
                    f"two wake-word models share the name {name!r}: {paths[name]} and {path}"
                )
            paths[name] = path
            spec_of[name] = spec
        self._thresholds = self._resolve_thresholds(thresholds, spec_of)
        self._specs = tuple(spec_of.values())
        self._refractory_samples = int(round(refractory_s * WAKE_RATE))
        self._seed = seed
        with litert_info_dropped():  # LiteRT's first interpreter prints an INFO line to fd 2
            self._oww = self._load(paths)
        self._names: tuple[str, ...] = tuple(paths)
        self._verifiers = self._load_verifiers(spec_of) if verify else {}
        self._above: dict[str, int] = dict.fromkeys(self._names, 0)
        self._verifier_scores: dict[str, float] = dict.fromkeys(self._verifiers, 0.0)
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples_fed = 0
        self._scores: dict[str, float] = dict.fromkeys(self._names, 0.0)
        self._last_wake: dict[str, int | None] = dict.fromkeys(self._names, None)
        self._armed: dict[str, bool] = dict.fromkeys(self._names, True)

    @staticmethod
    def _resolve_thresholds(
        thresholds: Mapping[str, float] | float, spec_of: Mapping[str, str]
    ) -> dict[str, float]:
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
                name: float(thresholds.get(name, thresholds.get(spec, DEFAULT_THRESHOLD)))
                for name, spec in spec_of.items()
            }
        for name, value in out.items():
            if not 0.0 < value < 1.0:  # as the settings say: a score of 1 is never reached
                raise ValueError(f"threshold for {name!r} must be between 0 and 1, got {value}")
        return out

    def _load(self, paths: Mapping[str, Path]) -> Any:
        model_cls = load_model_class()
        features = bundled_models_dir()
        tflite = {n: p for n, p in paths.items() if p.suffix.lower() == ".tflite"}
        onnx = {n: p for n, p in paths.items() if p.suffix.lower() == ".onnx"}
        # openWakeWord needs at least one model in its constructor; with only .onnx models, load the
        # default one and drop it again once the .onnx models are attached.
        ctor = dict(tflite) or {"__placeholder__": resolve_model(DEFAULT_MODEL)}
        try:
            with _seeded(self._seed):
                oww = model_cls(
                    wakeword_models=[str(p) for p in ctor.values()],
                    inference_framework="tflite",
                    melspec_model_path=str(features / "melspectrogram.tflite"),
                    embedding_model_path=str(features / "embedding_model.tflite"),
                )
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError for unreadable models
            names = ", ".join(str(p) for p in ctor.values())
            raise WakeWordModelError(f"cannot load wake-word model(s) {names}: {exc}") from exc
        if not tflite:
            placeholder = resolve_model(DEFAULT_MODEL).stem
            for table in (oww.models, oww.model_inputs, oww.model_outputs, oww.model_prediction_function,
                          oww.class_mapping):
                table.pop(placeholder, None)
        for name, path in onnx.items():
            add_onnx_model(oww, name, path)
        self._compact(oww)
        return oww

    @staticmethod
    def _compact(oww: Any) -> None:
        """Drop the memory openWakeWord's 4 s warm-up batch left behind (see oww_memory)."""
        features = bundled_models_dir()
        compact_streaming_memory(oww, features / "melspectrogram.tflite", features / "embedding_model.tflite")

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
        """A new detector with the same models, thresholds and verifiers and its own streaming state
        (the appliance scores what its speaker plays with one, see ``self_wake.py``)."""
        return WakeWordDetector(
            self._specs,
            self._thresholds,
            self._refractory_samples / WAKE_RATE,
            seed=self._seed,
            verify=bool(self._verifiers),
        )

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
        prediction = self._oww.predict(frame)
        window = self.embedding_window() if self._verifiers else None
        found: list[Detection] = []
        for name in self._names:
            score = float(prediction.get(name, 0.0))
            self._scores[name] = score
            threshold = self._thresholds[name]
            verifier = self._verifiers.get(name)
            verifier_score: float | None = None
            if verifier is None or window is None:
                hit = score >= threshold
            else:
                # The rule ships with the verifier (see VerifierRule): in noise and rooms the stock score
                # collapses where the verifier, trained there, still hears the wake word, and on near
                # misses the stock model fires where the verifier, trained on them, does not.
                verifier_score = verifier.score(window)
                self._verifier_scores[name] = verifier_score
                hit = verifier.rule.hit(score, verifier_score, threshold)
            if not hit:
                self._armed[name] = True
                self._above[name] = 0
                continue
            self._above[name] += 1
            if verifier is not None and self._above[name] < verifier.rule.confirm:
                continue
            last = self._last_wake[name]
            in_refractory = last is not None and self._samples_fed - last < self._refractory_samples
            if not self._armed[name] or in_refractory:
                continue
            self._armed[name] = False
            self._last_wake[name] = self._samples_fed
            found.append(Detection(name, score, self._samples_fed, verifier_score, stock_fired=score >= threshold))
        return found

    def reset(self) -> None:
        """Forget all audio: feature buffers, pending samples, scores, refractory state, sample count."""
        with _seeded(self._seed):
            self._oww.reset()
        self._compact(self._oww)
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples_fed = 0
        self._scores = dict.fromkeys(self._names, 0.0)
        self._last_wake = dict.fromkeys(self._names, None)
        self._armed = dict.fromkeys(self._names, True)
        self._above = dict.fromkeys(self._names, 0)
        self._verifier_scores = dict.fromkeys(self._verifiers, 0.0)

    def embedding_window(self) -> np.ndarray:
        """The last 16 openWakeWord speech-embedding frames (16 x 96), the input every model scores."""
        return np.asarray(self._oww.preprocessor.get_features(FEATURE_FRAMES)[0])

    def predict_frame(self, frame: np.ndarray) -> dict[str, float]:
        """Raw openWakeWord ``predict`` on one 1280-sample int16 frame (benchmarks; bypasses bookkeeping)."""
        return {k: float(v) for k, v in self._oww.predict(frame).items()}
