"""Which wake-word model files to load: bundled names or ``.tflite``/``.onnx`` paths, checked up front.

The bottom of the wake-word stack: everything above (the feature pipeline, the classifiers, the
detector) asks here for files and nothing here imports them back.

The ``.tflite`` models are openWakeWord's, as shipped in the ``pyopen-wakeword`` wheel: the two
feature models (``melspectrogram``, ``embedding_model``) and the wake-word classifiers named in
``BUNDLED_MODELS``. The directory is found without importing that package (its own runtime is not
used). ``resolve_model`` turns what the settings say into an existing file, or raises
``WakeWordModelError`` with a message that names the file and lists the bundled models.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL",
    "EMBEDDING_MODEL",
    "MELSPEC_MODEL",
    "WakeWordModelError",
    "bundled_models_dir",
    "feature_model",
    "resolve_model",
]

#: Wake-word models shipped in the pyopen-wakeword wheel.
BUNDLED_MODELS: tuple[str, ...] = ("alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy", "okay_nabu")
DEFAULT_MODEL = "hey_jarvis"
#: The two feature models every openWakeWord classifier reads through (same wheel).
MELSPEC_MODEL = "melspectrogram"
EMBEDDING_MODEL = "embedding_model"

_TFLITE_MAGIC = b"TFL3"  # FlatBuffers file identifier at bytes 4..8 of every .tflite model


class WakeWordModelError(Exception):
    """A wake-word model could not be found or loaded. The message names the file."""


def bundled_models_dir() -> Path:
    """Directory holding the ``.tflite`` models of the pyopen-wakeword wheel (found without importing it)."""
    spec = importlib.util.find_spec("pyopen_wakeword")
    if spec is None or not spec.submodule_search_locations:
        raise WakeWordModelError("pyopen-wakeword is not installed; it provides the openWakeWord .tflite models")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def feature_model(name: str) -> Path:
    """Path of a bundled feature model (``MELSPEC_MODEL`` or ``EMBEDDING_MODEL``), checked to exist."""
    path = bundled_models_dir() / f"{name}.tflite"
    if not path.is_file():
        raise WakeWordModelError(f"wake-word feature model {name!r} is missing: {path} (pyopen-wakeword)")
    return path


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
