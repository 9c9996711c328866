"""Wake-word classifiers: one score in [0, 1] from the last N speech embeddings (openWakeWord models).

A classifier file is an openWakeWord wake-word model: input (1, N, 96) embeddings (N = 16 for all
bundled ones), output one probability. ``.tflite`` files run on LiteRT; an ``.onnx`` file needs
onnxruntime, which the appliance does not install (it is imported only when such a file is given).
Models with several output classes are refused with a clear message: the detector scores one wake
word per model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from appliance.triggers.features import EMBEDDING_DIM
from appliance.triggers.litert import FixedShapeModel
from appliance.triggers.wake_models import WakeWordModelError

__all__ = ["WakeClassifier", "load_classifier"]


class WakeClassifier(Protocol):
    """Scores a window of the last ``input_frames`` embeddings."""

    path: Path
    input_frames: int

    def score(self, window: np.ndarray) -> float:
        """``window``: float32, (input_frames, 96), oldest first."""
        ...


class LiteRTClassifier:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._model = FixedShapeModel(path)
        shape = self._model.input_shape
        if len(shape) != 3 or shape[0] != 1 or shape[2] != EMBEDDING_DIM:
            raise WakeWordModelError(f"wake-word model {path} takes shape {shape}, expected (1, N, {EMBEDDING_DIM})")
        if int(np.prod(self._model.output_shape)) != 1:
            raise WakeWordModelError(
                f"wake-word model {path} has output shape {self._model.output_shape}; only one-class models work"
            )
        self.input_frames = shape[1]

    def score(self, window: np.ndarray) -> float:
        return float(self._model.run(window[None]).reshape(-1)[0])


class OnnxClassifier:
    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise WakeWordModelError(
                f"wake-word model {path} is .onnx, which needs onnxruntime (not installed)"
            ) from exc
        self.path = path
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        try:
            self._session: Any = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            model_input = self._session.get_inputs()[0]
            outputs = self._session.get_outputs()[0].shape
        except Exception as exc:
            raise WakeWordModelError(f"cannot load wake-word model {path}: {exc}") from exc
        if not isinstance(model_input.shape[1], int) or outputs[-1] != 1:
            raise WakeWordModelError(
                f"wake-word model {path} has input {model_input.shape} and output {outputs}; "
                f"expected (1, N, {EMBEDDING_DIM}) to one score"
            )
        self._input_name = model_input.name
        self.input_frames = int(model_input.shape[1])

    def score(self, window: np.ndarray) -> float:
        return float(np.asarray(self._session.run(None, {self._input_name: window[None]})[0]).reshape(-1)[0])


def load_classifier(path: Path) -> WakeClassifier:
    """The classifier in ``path`` (``.tflite`` or ``.onnx``, already resolved by ``wake_models``)."""
    if path.suffix.lower() == ".onnx":
        return OnnxClassifier(path)
    return LiteRTClassifier(path)
