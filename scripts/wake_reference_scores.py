#!/usr/bin/env python3
"""Record openWakeWord 0.6's own per-frame scores on the committed WAV fixtures, once, for the tests.

The appliance runs openWakeWord's models on its own pipeline (appliance/triggers/features.py) and does
not install the ``openwakeword`` package; tests/test_wake_reference.py holds that pipeline to the scores
written here by openWakeWord itself (tests/fixtures/wake_reference.npz).

Run with openWakeWord in a throwaway venv (Python 3.11; tflite-runtime has no numpy 2 build, so LiteRT
is registered under its module names, as its ``Interpreter`` API is the same):

    python3.11 -m venv /tmp/oww-ref
    /tmp/oww-ref/bin/pip install openwakeword==0.6.0 --no-deps
    /tmp/oww-ref/bin/pip install ai-edge-litert numpy soxr pyopen-wakeword tqdm requests \\
        onnxruntime scipy scikit-learn
    /tmp/oww-ref/bin/python scripts/wake_reference_scores.py

What is recorded, per fixture, one float32 array (frames x columns, the columns named in ``meta``):
each bundled model's ``Model.predict`` score on 1280-sample frames of 1 s silence + the clip + 1 s
silence (as ``appliance wakeword`` scans a file), after a ``reset()`` and 4 s of digital silence.
openWakeWord fills its buffers with random noise on reset; the silence flushes it (this script checks
it: two different noise seeds must give identical scores) and leaves the state the appliance's
pipeline starts in. Also the hey_jarvis verifier's score (the appliance's bundled
verifier, plain numpy) on openWakeWord's own last 16 embeddings.
"""

from __future__ import annotations

import json
import sys
import types
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.audio.wavfile import read_wav  # noqa: E402  (numpy and soxr only)
from appliance.triggers.verifier import FEATURE_FRAMES, EmbeddingVerifier, bundled_verifier  # noqa: E402
from appliance.triggers.wake_models import (  # noqa: E402
    BUNDLED_MODELS,
    EMBEDDING_MODEL,
    MELSPEC_MODEL,
    feature_model,
    resolve_model,
)

FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "wake_reference.npz"
RATE = 16_000
FRAME = 1280
WARMUP_FRAMES = 50  # 4 s: more than the 16 embeddings the classifiers read plus the 76-frame mel window
PAD_S = 1
SEEDS = (0, 1)


def fixture_paths() -> list[Path]:
    return sorted(FIXTURES.glob("wake/*/*.wav")) + sorted(FIXTURES.glob("*.wav"))


def clip_key(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def padded_clip(path: Path) -> np.ndarray:
    pad = np.zeros(PAD_S * RATE, dtype=np.int16)
    return np.concatenate((pad, read_wav(path, RATE)[0], pad))


def load_openwakeword() -> type:
    try:
        import tflite_runtime.interpreter  # noqa: F401
    except ImportError:
        from ai_edge_litert import interpreter as litert

        package = types.ModuleType("tflite_runtime")
        package.__path__ = []  # type: ignore[attr-defined]
        package.interpreter = litert  # type: ignore[attr-defined]
        sys.modules["tflite_runtime"] = package
        sys.modules["tflite_runtime.interpreter"] = litert
    from openwakeword.model import Model

    return Model


COLUMNS = (*BUNDLED_MODELS, "hey_jarvis_verifier")


def run(model: object, verifier: EmbeddingVerifier, audio: np.ndarray, seed: int) -> np.ndarray:
    """Scores, frames x COLUMNS."""
    np.random.seed(seed)  # openWakeWord's reset draws its noise from the global generator
    model.reset()  # type: ignore[attr-defined]
    silence = np.zeros(FRAME, dtype=np.int16)
    for _ in range(WARMUP_FRAMES):
        model.predict(silence)  # type: ignore[attr-defined]
    rows = []
    for i in range(len(audio) // FRAME):
        scores = model.predict(audio[i * FRAME : (i + 1) * FRAME])  # type: ignore[attr-defined]
        window = model.preprocessor.get_features(FEATURE_FRAMES)[0]  # type: ignore[attr-defined]
        rows.append([float(scores[name]) for name in BUNDLED_MODELS] + [verifier.score(window)])
    return np.asarray(rows, dtype=np.float64)


def main() -> int:
    model_cls = load_openwakeword()
    model = model_cls(
        wakeword_models=[str(resolve_model(name)) for name in BUNDLED_MODELS],
        inference_framework="tflite",
        melspec_model_path=str(feature_model(MELSPEC_MODEL)),
        embedding_model_path=str(feature_model(EMBEDDING_MODEL)),
    )
    verifier_path = bundled_verifier("hey_jarvis")
    assert verifier_path is not None
    verifier = EmbeddingVerifier.load(verifier_path)
    arrays: dict[str, np.ndarray] = {}
    for path in fixture_paths():
        audio = padded_clip(path)
        first, *others = (run(model, verifier, audio, seed) for seed in SEEDS)
        if any(not np.array_equal(first, other) for other in others):
            raise SystemExit(f"{path}: the scores depend on openWakeWord's start noise; warm up longer")
        # Stock scores are float32 from LiteRT; the verifier's float64 is kept to float32 precision.
        arrays[clip_key(path)] = first.astype(np.float32)
        best = first[:, COLUMNS.index("hey_jarvis")].max()
        print(f"{clip_key(path)}: {len(first)} frames, hey_jarvis max {best:.4f}")
    meta = {
        "made_by": "scripts/wake_reference_scores.py",
        "versions": {p: metadata.version(p) for p in ("openwakeword", "ai-edge-litert", "numpy", "soxr")},
        "frame_samples": FRAME,
        "warmup_frames": WARMUP_FRAMES,
        "pad_s": PAD_S,
        "verifier": verifier_path.name,
        "columns": list(COLUMNS),
    }
    np.savez_compressed(OUT, meta=np.array(json.dumps(meta)), **arrays)
    print(f"wrote {len(arrays)} clips to {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
