"""Which wake-word model files to load: bundled names or ``.tflite``/``.onnx`` paths, checked up front.

``resolve_model`` turns what the settings say into an existing file, or raises
``WakeWordModelError`` with a message that names the file and lists the bundled models.
``add_onnx_model`` attaches an ``.onnx`` model to an openWakeWord ``Model`` running on tflite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from appliance.triggers.oww_loader import BUNDLED_MODELS, bundled_models_dir

__all__ = ["BUNDLED_MODELS", "DEFAULT_MODEL", "WakeWordModelError", "add_onnx_model", "resolve_model"]

DEFAULT_MODEL = "hey_jarvis"
_TFLITE_MAGIC = b"TFL3"  # FlatBuffers file identifier at bytes 4..8 of every .tflite model


class WakeWordModelError(Exception):
    """A wake-word model could not be found or loaded. The message names the file."""


def _bundled_hint() -> str:
    return f"bundled models: {', '.join(BUNDLED_MODELS)}"


def resolve_model(spec: str) -> Path:
    """Map a bundled model name or a ``.tflite``/``.onnx`` file path to an existing model file.

    Raises ``WakeWordModelError`` naming the file (and listing the bundled names) when the file is
    missing, has another suffix, or is visibly not a ``.tflite`` model.
    """
    name = spec.strip()
    if name in BUNDLED_MODELS:
        path = bundled_models_dir() / f"{name}.tflite"
        if not path.is_file():
            raise WakeWordModelError(f"bundled wake-word model {name!r} is missing: {path} (pyopen-wakeword)")
        return path
    path = Path(name).expanduser()
    if path.suffix.lower() not in (".tflite", ".onnx"):
        if not path.suffix and "/" not in name:
            raise WakeWordModelError(
                f"unknown wake-word model {name!r}; {_bundled_hint()}, or a .tflite/.onnx path"
            )
        raise WakeWordModelError(f"wake-word model {path} must be a .tflite or .onnx file; {_bundled_hint()}")
    if not path.is_file():
        raise WakeWordModelError(f"wake-word model file not found: {path}; {_bundled_hint()}")
    if path.suffix.lower() == ".tflite":
        with path.open("rb") as f:
            head = f.read(8)
        if head[4:8] != _TFLITE_MAGIC:
            raise WakeWordModelError(f"wake-word model {path} is not a valid .tflite file; {_bundled_hint()}")
    return path.resolve()


def add_onnx_model(oww: Any, name: str, path: Path) -> None:
    """Attach an ``.onnx`` wake-word model to a tflite-framework openWakeWord ``Model``.

    openWakeWord picks one framework for everything, and onnx would also need onnx feature models,
    which are not bundled. This mirrors its onnx branch for one model; onnxruntime is imported only here.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise WakeWordModelError(
            f"wake-word model {path} is .onnx, which needs onnxruntime (not installed)"
        ) from exc
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise WakeWordModelError(f"cannot load wake-word model {path}: {exc}") from exc
    input_name = session.get_inputs()[0].name

    def predict(x: np.ndarray) -> Any:
        return session.run(None, {input_name: x})

    oww.models[name] = session
    oww.model_inputs[name] = session.get_inputs()[0].shape[1]
    oww.model_outputs[name] = session.get_outputs()[0].shape[1]
    oww.model_prediction_function[name] = predict
    oww.class_mapping[name] = {str(i): str(i) for i in range(oww.model_outputs[name])}
