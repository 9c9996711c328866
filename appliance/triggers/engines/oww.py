"""openWakeWord's wake-word models as an engine: the project's feature pipeline plus one classifier each.

Scores match openWakeWord 0.6's ``Model.predict`` fed 1280-sample frames (tests/test_wake_reference.py
holds them to the scores ``scripts/wake_reference_scores.py`` recorded with openWakeWord itself),
except at the start: this engine starts from silence where openWakeWord starts from noise (see
``features.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from appliance.triggers.classifiers import WakeClassifier, load_classifier
from appliance.triggers.features import FRAME_SAMPLES, FeatureModels, WakeFeatures

if TYPE_CHECKING:
    from appliance.triggers.engines.base import WakeEngine

__all__ = ["OpenWakeWordEngine"]


class OpenWakeWordEngine:
    """The feature pipeline and one classifier per model name. ``min_history``: embeddings kept for
    other readers (the verifier reads 16). ``load`` reads the model files."""

    def __init__(self, feature_models: FeatureModels, classifiers: Mapping[str, WakeClassifier],
                 min_history: int = 16) -> None:
        self._classifiers = dict(classifiers)
        history = max([min_history, *(c.input_frames for c in self._classifiers.values())])
        self.features = WakeFeatures(feature_models, history)

    @classmethod
    def load(cls, paths: Mapping[str, Path], min_history: int = 16) -> OpenWakeWordEngine:
        """``paths``: model name -> classifier file (resolved by ``wake_models``)."""
        classifiers = {name: load_classifier(path) for name, path in paths.items()}
        return cls(FeatureModels(), classifiers, min_history)

    @property
    def frame_samples(self) -> int:
        return FRAME_SAMPLES

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self._classifiers)

    def score_frame(self, frame: np.ndarray) -> dict[str, float]:
        self.features.push(frame)
        window = self.features.window
        return {name: c.score(window(c.input_frames)) for name, c in self._classifiers.items()}

    def reset(self) -> None:
        self.features.reset()

    def embedding_window(self, frames: int = 16) -> np.ndarray:
        """The last ``frames`` speech embeddings (frames x 96), a copy."""
        return self.features.window(frames).copy()

    def fork(self) -> OpenWakeWordEngine:
        return OpenWakeWordEngine(self.features.models, self._classifiers, self.features.history)


if TYPE_CHECKING:
    _fits_the_interface: type[WakeEngine] = OpenWakeWordEngine  # mypy checks it structurally
