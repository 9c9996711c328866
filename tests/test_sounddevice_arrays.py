"""sounddevice's callback arrays are made without numpy 2.5's deprecated ``ndarray.shape`` assignment."""

from __future__ import annotations

import warnings

import numpy as np
import sounddevice as sd

import appliance.audio.backends.portaudio  # noqa: F401  (importing the backend applies the fix)
from appliance.audio.backends.sounddevice_arrays import use_reshape


def test_a_callback_array_is_a_view_of_the_block_and_warns_nothing() -> None:
    block = bytearray(np.arange(8, dtype=np.int16).tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy 2.5 warned here on every PortAudio block
        data = sd._array(block, 2, "int16")
    assert data.shape == (4, 2) and data[1, 0] == 2
    data[0, 0] = 9  # a view, as before: no copy per block
    assert np.frombuffer(block, dtype=np.int16)[0] == 9


def test_a_sounddevice_without_the_helper_is_left_alone() -> None:
    class Other:
        pass

    assert use_reshape(Other()) is False  # type: ignore[arg-type]
    assert not hasattr(Other, "_array")
