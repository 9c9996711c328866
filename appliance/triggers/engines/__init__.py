"""Wake-word engines: streaming scorers behind one small interface (``base.WakeEngine``).

``oww``: openWakeWord's models on the project's own feature pipeline (``triggers/features.py``); its
embeddings also feed the verifier. ``micro``: microWakeWord's models through ``pymicro-wakeword`` (its
own features, no embeddings). Both step in the same 80 ms frames, so ``EngineSet`` runs a mixed list
(``hey_jarvis,micro:okay_nabu``) as one engine: the detector's wake rule, refractory and self-wake
filter only need one score per model per frame. An engine is loaded only when a model needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from appliance.triggers.engines.base import WakeEngine
    from appliance.triggers.engines.micro import MicroWakeWordEngine
    from appliance.triggers.engines.oww import OpenWakeWordEngine
    from appliance.triggers.features import WakeFeatures

__all__ = ["EngineSet"]


class EngineSet:
    """The openWakeWord engine, the microWakeWord engine, or both, scored frame by frame as one."""

    def __init__(self, oww: OpenWakeWordEngine | None, micro: MicroWakeWordEngine | None,
                 order: tuple[str, ...]) -> None:
        self.oww = oww
        self.micro = micro
        self._order = order

    @classmethod
    def load(cls, oww_paths: Mapping[str, Path], micro_manifests: Mapping[str, Path],
             order: tuple[str, ...], min_history: int = 16) -> EngineSet:
        """``oww_paths``: name -> classifier file; ``micro_manifests``: name -> ``.json`` manifest;
        ``order``: every name, in the order the scores are reported."""
        oww = micro = None
        if oww_paths:
            from appliance.triggers.engines.oww import OpenWakeWordEngine

            oww = OpenWakeWordEngine.load(oww_paths, min_history)
        if micro_manifests:
            from appliance.triggers.engines.micro import MicroWakeWordEngine

            micro = MicroWakeWordEngine(micro_manifests)
        return cls(oww, micro, order)

    @property
    def frame_samples(self) -> int:
        return next(e.frame_samples for e in self._parts())

    @property
    def models(self) -> tuple[str, ...]:
        return self._order

    @property
    def engine_of(self) -> dict[str, str]:
        """Each model's engine: ``"openwakeword"`` or ``"microwakeword"``."""
        out = dict.fromkeys(self.oww.models if self.oww else (), "openwakeword")
        out.update(dict.fromkeys(self.micro.models if self.micro else (), "microwakeword"))
        return {name: out[name] for name in self._order}

    @property
    def features(self) -> WakeFeatures:
        """The openWakeWord feature pipeline (the verifier reads its embeddings)."""
        if self.oww is None:
            raise ValueError("no openWakeWord model is loaded: microWakeWord models have no speech embeddings")
        return self.oww.features

    def _parts(self) -> list[WakeEngine]:
        return [e for e in (self.oww, self.micro) if e is not None]

    def score_frame(self, frame: np.ndarray) -> dict[str, float]:
        scores: dict[str, float] = {}
        for engine in self._parts():
            scores.update(engine.score_frame(frame))
        return scores

    def reset(self) -> None:
        for engine in self._parts():
            engine.reset()

    def embedding_window(self, frames: int = 16) -> np.ndarray:
        """The last ``frames`` speech embeddings of the openWakeWord pipeline (a copy)."""
        if self.oww is None:
            raise ValueError("no openWakeWord model is loaded: microWakeWord models have no speech embeddings")
        return self.oww.embedding_window(frames)

    def fork(self) -> EngineSet:
        return EngineSet(self.oww.fork() if self.oww else None, self.micro.fork() if self.micro else None,
                         self._order)


if TYPE_CHECKING:
    _fits_the_interface: type[WakeEngine] = EngineSet  # mypy checks it structurally
