"""One fixed-shape LiteRT interpreter per wake-word model file (the only module importing LiteRT).

Every model runs at the one shape streaming needs, allocated once: no resizing per call, and none of
the memory a larger batch would leave planned (LiteRT keeps the plan of the largest shape it saw).
One thread each, as openWakeWord runs them, so the scores match its own.

An interpreter is not thread-safe: its owner calls it from one thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.triggers.wake_models import WakeWordModelError

__all__ = ["FixedShapeModel"]


class FixedShapeModel:
    """A ``.tflite`` model with one float32 input and one output, run at one input shape."""

    def __init__(self, path: Path, input_shape: Sequence[int] | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        try:
            self._interpreter: Any = Interpreter(model_path=str(path), num_threads=1)
            if input_shape is not None:
                self._interpreter.resize_tensor_input(0, list(input_shape), strict=True)
            self._interpreter.allocate_tensors()
            inputs = self._interpreter.get_input_details()
            outputs = self._interpreter.get_output_details()
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError for unreadable models
            raise WakeWordModelError(f"cannot load wake-word model {path}: {exc}") from exc
        if len(inputs) != 1 or len(outputs) != 1:
            raise WakeWordModelError(
                f"wake-word model {path} has {len(inputs)} inputs and {len(outputs)} outputs, expected 1 and 1"
            )
        if inputs[0]["dtype"] != np.float32:
            raise WakeWordModelError(f"wake-word model {path} takes {inputs[0]['dtype']}, expected float32")
        self.input_shape: tuple[int, ...] = tuple(int(n) for n in inputs[0]["shape"])
        self.output_shape: tuple[int, ...] = tuple(int(n) for n in outputs[0]["shape"])
        self._input = int(inputs[0]["index"])
        self._output = int(outputs[0]["index"])

    def run(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run on ``x`` (float32, C-contiguous, exactly ``input_shape``); returns a copy of the output."""
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        out: npt.NDArray[np.float32] = self._interpreter.get_tensor(self._output)  # get_tensor copies
        return out
