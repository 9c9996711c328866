"""microWakeWord's models as an engine, through ``pymicro-wakeword`` (its own TFLite C library and features).

microWakeWord computes a 40-bin feature vector every 10 ms (``MicroWakeWordFeatures``) and its
streaming models run once per 3 of them (30 ms), each giving the mean of its last
``sliding_window_size`` probabilities (the model's manifest sets both that window and the cutoff it
wakes at). The detector steps in 80 ms frames, so a frame's score here is the highest such mean among
the inferences the frame completed: a peak is never skipped, and the wake rule (``score >= threshold``)
is microWakeWord's own rule (``mean > probability_cutoff``) at the frame's end.

The models keep streaming state inside the interpreter; ``reset()`` reloads them (microWakeWord's own
``reset``, a fraction of a millisecond) and ``fork()`` loads another interpreter per model, so a twin
has its own state. No speech embeddings: a verifier cannot run on this engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance.triggers.features import FRAME_SAMPLES
from appliance.triggers.wake_models import WakeWordModelError

if TYPE_CHECKING:
    from appliance.triggers.engines.base import WakeEngine

__all__ = ["MicroWakeWordEngine"]


def _load(manifest: Path) -> Any:
    from pymicro_wakeword import MicroWakeWord

    try:
        return MicroWakeWord.from_config(manifest)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise WakeWordModelError(f"cannot load microWakeWord model {manifest}: {exc}") from exc


class MicroWakeWordEngine:
    """One feature stream feeding one ``MicroWakeWord`` per model. ``manifests``: model name -> the
    model's ``.json`` manifest (resolved by ``wake_models.resolve_micro_model``)."""

    def __init__(self, manifests: Mapping[str, Path]) -> None:
        from pymicro_wakeword import MicroWakeWordFeatures

        self._manifests = dict(manifests)
        self._models = {name: _load(path) for name, path in self._manifests.items()}
        self._features = MicroWakeWordFeatures()

    @property
    def frame_samples(self) -> int:
        return FRAME_SAMPLES

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self._models)

    @property
    def cutoffs(self) -> dict[str, float]:
        """Each model's own probability cutoff, from its manifest (the detector's default threshold)."""
        return {name: float(m.probability_cutoff) for name, m in self._models.items()}

    def score_frame(self, frame: np.ndarray) -> dict[str, float]:
        best = dict.fromkeys(self._models, 0.0)
        for features in self._features.process_streaming(np.ascontiguousarray(frame, dtype=np.int16).tobytes()):
            for name, model in self._models.items():
                prob = model.process_streaming_prob(features)
                if prob is not None and prob > best[name]:
                    best[name] = float(prob)
        return best

    def reset(self) -> None:
        self._features.reset()
        for model in self._models.values():
            model.reset()

    def fork(self) -> MicroWakeWordEngine:
        # The interpreter holds the stream's state, so a fork needs interpreters of its own (the TFLite
        # library is loaded once per process either way).
        return MicroWakeWordEngine(self._manifests)


if TYPE_CHECKING:
    _fits_the_interface: type[WakeEngine] = MicroWakeWordEngine  # mypy checks it structurally
