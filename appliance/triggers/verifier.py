"""A second opinion on a wake word: a small network over the speech embeddings (``features.py``).

The stock openWakeWord model for a wake word and its verifier read the same input, the last 16
speech-embedding frames (16 x 96, about 2 s of audio), which the feature pipeline computes anyway; the
verifier adds one 1536 x 32 matrix product per 80 ms frame. It was trained with noise augmentation
and near misses (scripts/train_wake_verifier.py), so it keeps hearing the wake word in noise where
the stock model's score collapses. The detector lets it add wakes, never veto the stock model's.

File format (``.npz``): ``mean``/``std`` (input standardization, 1536), ``w1`` (1536 x H), ``b1``
(H), ``w2`` (H x 1), ``b2`` (1), and ``meta`` (a JSON string saying how it was made). ``meta["rule"]``
may say how the detector combines the verifier with the stock model (``VerifierRule``): the rule is
chosen with the network it belongs to, so a retrained verifier ships with its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.triggers.features import EMBEDDING_DIM

__all__ = ["FEATURE_FRAMES", "EmbeddingVerifier", "VerifierError", "VerifierRule", "bundled_verifier"]

FEATURE_FRAMES = 16  # embedding frames per decision, as the stock openWakeWord models use
_KEYS = ("mean", "std", "w1", "b1", "w2", "b2")
_DIR = Path(__file__).resolve().parents[1] / "defaults" / "models"


class VerifierError(Exception):
    """A verifier file is missing or malformed. The message names the file."""


@dataclass(frozen=True, slots=True)
class VerifierRule:
    """When a model with a verifier wakes, per 80 ms frame (``s`` stock score, ``v`` verifier score):

        (s >= threshold and v >= veto) or (v >= alone and s >= floor)

    held for ``confirm`` frames in a row. The defaults are the rule of the first verifier, which only
    added wakes to the stock model's; ``veto`` > 1 leaves every decision to the verifier.
    """

    alone: float = 0.7
    veto: float = 0.0
    floor: float = 0.0
    confirm: int = 3

    def hit(self, score: float, verifier_score: float, threshold: float = 0.5) -> bool:
        """Does one frame count towards a wake? A threshold stricter than openWakeWord's default 0.5
        asks more of the verifier too."""
        alone = max(self.alone, threshold) if threshold > 0.5 else self.alone
        return (score >= threshold and verifier_score >= self.veto) or (
            verifier_score >= alone and score >= self.floor)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> VerifierRule:
        raw = meta.get("rule") or {}
        if not isinstance(raw, Mapping):
            raise ValueError(f"rule must be a mapping, got {raw!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown rule keys {unknown}; known: {sorted(known)}")
        default = cls()
        rule = cls(alone=float(raw.get("alone", default.alone)), veto=float(raw.get("veto", default.veto)),
                   floor=float(raw.get("floor", default.floor)), confirm=int(raw.get("confirm", default.confirm)))
        if rule.confirm < 1 or not 0 < rule.alone <= 1 or rule.veto < 0 or not 0 <= rule.floor <= 1:
            raise ValueError(f"rule out of range: {rule}")
        return rule


def bundled_verifier(model_name: str) -> Path | None:
    """The verifier shipped for a bundled wake-word model, if there is one."""
    path = _DIR / f"{model_name}_verifier.npz"
    return path if path.is_file() else None


class EmbeddingVerifier:
    """Scores a window of openWakeWord embeddings in [0, 1] (1 = the wake word just ended)."""

    def __init__(self, params: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> None:
        d = FEATURE_FRAMES * EMBEDDING_DIM
        arrays = {k: np.asarray(params[k], dtype=np.float32) for k in _KEYS}
        hidden = arrays["b1"].shape[0]
        expected = {"mean": (d,), "std": (d,), "w1": (d, hidden), "b1": (hidden,), "w2": (hidden, 1), "b2": (1,)}
        for key, shape in expected.items():
            if arrays[key].shape != shape:
                raise ValueError(f"verifier array {key!r} has shape {arrays[key].shape}, expected {shape}")
        # Fold the standardization into the first layer: one matrix product per frame at run time.
        scale = 1.0 / arrays["std"]
        self._w1 = (arrays["w1"] * scale[:, None]).astype(np.float32)
        self._b1 = (arrays["b1"] - (arrays["mean"] * scale) @ arrays["w1"]).astype(np.float32)
        self._w2 = arrays["w2"][:, 0].copy()
        self._b2 = float(arrays["b2"][0])
        self.meta = dict(meta or {})
        self.rule = VerifierRule.from_meta(self.meta)

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingVerifier:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in _KEYS if k not in data.files]
                if missing:
                    raise VerifierError(f"wake-word verifier {path} lacks {', '.join(missing)}")
                params = {k: data[k] for k in _KEYS}
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
            return cls(params, meta)
        except VerifierError:
            raise
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise VerifierError(f"cannot load wake-word verifier {path}: {exc}") from exc

    def score_batch(self, windows: np.ndarray) -> npt.NDArray[np.float64]:
        """Scores for ``windows`` of shape (N, 16, 96) or (N, 1536); always < 1, so a threshold of 1 never passes."""
        x = np.asarray(windows, dtype=np.float32).reshape(len(windows), -1)
        h = np.maximum(x @ self._w1 + self._b1, 0.0)
        logit = np.clip((h @ self._w2).astype(np.float64) + self._b2, -30.0, 30.0)
        return 1.0 / (1.0 + np.exp(-logit))

    def score(self, window: np.ndarray) -> float:
        """Score of one (16, 96) embedding window."""
        return float(self.score_batch(np.asarray(window)[None])[0])
