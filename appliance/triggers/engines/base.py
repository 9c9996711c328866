"""The interface every wake-word engine offers the detector (``triggers/wakeword.py``)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["WakeEngine"]


class WakeEngine(Protocol):
    """Scores fixed-size frames of 16 kHz mono int16 audio, one score in [0, 1] per model.

    Deterministic: the same audio after creation or ``reset()`` gives the same scores. One thread
    calls it.
    """

    @property
    def frame_samples(self) -> int:
        """Samples per frame ``score_frame`` takes."""
        ...

    @property
    def models(self) -> tuple[str, ...]:
        """Model names, in the order given; the keys of every ``score_frame`` result."""
        ...

    def score_frame(self, frame: np.ndarray) -> dict[str, float]:
        """Feed one frame (``frame_samples`` int16 samples); each model's score for it."""
        ...

    def reset(self) -> None:
        """Forget all audio heard."""
        ...

    def fork(self) -> WakeEngine:
        """Another stream over the same loaded models, with its own state (same thread only)."""
        ...
