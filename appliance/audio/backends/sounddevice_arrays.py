"""sounddevice's callback arrays without the ``ndarray.shape`` assignment numpy 2.5 deprecates.

sounddevice 0.5 (0.5.6 is the newest) builds the array of every PortAudio block with
``data.shape = -1, channels``. Under numpy 2.5 (what Python 3.13 installs) that is one
DeprecationWarning per block per stream: a trip through the warnings machinery on PortAudio's
callback thread about 100 times a second, a flood wherever warnings are shown (pytest, ``-W
default``), and an error once numpy removes it. ``use_reshape`` swaps that one helper for the same
view made by ``reshape`` (no copy); a sounddevice without the helper is left alone.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["use_reshape"]


def _array(buffer: Any, channels: int, dtype: Any) -> np.ndarray:
    """A (frames, channels) view of a PortAudio buffer, as ``sounddevice._array`` makes it."""
    return np.frombuffer(buffer, dtype=dtype).reshape(-1, channels)


def use_reshape(sounddevice: ModuleType) -> bool:
    """Make ``sounddevice`` build its callback arrays with ``_array`` above; True if it now does."""
    if not callable(getattr(sounddevice, "_array", None)):
        return False
    sounddevice._array = _array  # type: ignore[attr-defined]
    return True
