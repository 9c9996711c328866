"""Which wake-word model files to load: bundled names or ``.tflite``/``.onnx`` paths, checked up front.

The bottom of the wake-word stack: everything above (the feature pipeline, the classifiers, the
detector) asks here for files and nothing here imports them back.

The ``.tflite`` models are openWakeWord's, as shipped in the ``pyopen-wakeword`` wheel: the two
feature models (``melspectrogram``, ``embedding_model``) and the wake-word classifiers named in
``BUNDLED_MODELS``. The directory is found without importing that package (its own runtime is not
used). ``resolve_model`` turns what the settings say into an existing file, or raises
``WakeWordModelError`` with a message that names the file and lists the bundled models.

microWakeWord models (the second engine, ``engines/micro.py``) are named ``micro:NAME`` (a model
bundled in the ``pymicro-wakeword`` wheel, ``MICRO_MODELS``) or ``micro:PATH.json`` (a model
manifest next to its ``.tflite``); ``resolve_micro_model`` checks the manifest up front.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL",
    "EMBEDDING_MODEL",
    "MELSPEC_MODEL",
    "MICRO_MODELS",
    "MICRO_PREFIX",
    "WakeWordModelError",
    "bundled_models_dir",
    "feature_model",
    "is_micro",
    "micro_models_dir",
    "micro_spec_problem",
    "micro_model_name",
    "resolve_micro_model",
    "resolve_model",
]

#: Wake-word models shipped in the pyopen-wakeword wheel.
BUNDLED_MODELS: tuple[str, ...] = ("alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy", "okay_nabu")
DEFAULT_MODEL = "hey_jarvis"
#: The two feature models every openWakeWord classifier reads through (same wheel).
MELSPEC_MODEL = "melspectrogram"
EMBEDDING_MODEL = "embedding_model"

#: microWakeWord models shipped in the pymicro-wakeword wheel (``micro:NAME``).
MICRO_MODELS: tuple[str, ...] = ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft")
MICRO_PREFIX = "micro:"

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


def is_micro(spec: str) -> bool:
    """Does ``spec`` name a microWakeWord model (``micro:NAME`` or ``micro:PATH.json``)?"""
    return spec.strip().startswith(MICRO_PREFIX)


def _micro_hint() -> str:
    return f"bundled microWakeWord models: {', '.join(MICRO_PREFIX + m for m in MICRO_MODELS)}"


def micro_spec_problem(spec: str) -> str | None:
    """Why ``spec`` cannot name a microWakeWord model, judged from the text alone (settings use it)."""
    rest = spec.strip()[len(MICRO_PREFIX):].strip()
    if rest in MICRO_MODELS or rest.lower().endswith(".json"):
        return None
    return f"unknown microWakeWord model {spec.strip()!r}; {_micro_hint()}, or micro:PATH.json (a model manifest)"


def micro_models_dir() -> Path:
    """Directory of the models bundled in the pymicro-wakeword wheel (found without importing it)."""
    spec = importlib.util.find_spec("pymicro_wakeword")
    if spec is None or not spec.submodule_search_locations:
        raise WakeWordModelError("pymicro-wakeword is not installed; it provides the microWakeWord models")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def micro_model_name(manifest: Path) -> str:
    """The name a microWakeWord model goes by in scores, thresholds and wake events: ``micro:STEM``."""
    return MICRO_PREFIX + manifest.stem


def resolve_micro_model(spec: str) -> Path:
    """Map ``micro:NAME`` or ``micro:PATH.json`` to an existing manifest whose ``.tflite`` exists.

    Raises ``WakeWordModelError`` naming the file (and listing the bundled micro models) when it is
    unknown, missing, not a microWakeWord manifest, or its model file is missing.
    """
    problem = micro_spec_problem(spec)
    if problem:
        raise WakeWordModelError(problem)
    rest = spec.strip()[len(MICRO_PREFIX):].strip()
    path = micro_models_dir() / f"{rest}.json" if rest in MICRO_MODELS else Path(rest).expanduser()
    if not path.is_file():
        raise WakeWordModelError(f"microWakeWord manifest not found: {path}; {_micro_hint()}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        model = path.parent / str(manifest["model"])
        micro = manifest["micro"]
        cutoff = float(micro["probability_cutoff"])
        window = int(micro["sliding_window_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WakeWordModelError(
            f"{path} is not a microWakeWord manifest (needs model, micro.probability_cutoff and "
            f"micro.sliding_window_size): {exc}"
        ) from exc
    if not 0.0 < cutoff < 1.0 or window < 1:
        raise WakeWordModelError(f"{path}: probability_cutoff must be in (0, 1) and sliding_window_size >= 1")
    if not model.is_file():
        raise WakeWordModelError(f"microWakeWord model file not found: {model} (named in {path})")
    with model.open("rb") as f:
        if f.read(8)[4:8] != _TFLITE_MAGIC:
            raise WakeWordModelError(f"microWakeWord model {model} is not a valid .tflite file")
    return path.resolve()
