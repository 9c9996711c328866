"""Run the wake-word detector over WAV files, and the ``appliance wakeword FILE.wav ...`` command.

Used by the command, ``appliance check`` and the accuracy scripts; the running appliance streams
microphone audio into ``WakeWordDetector`` directly and never needs this module.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audio.formats import WAKE_RATE
from appliance.audio.wavfile import read_wav
from appliance.store import StoreError
from appliance.triggers.wake_models import (
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    MICRO_MODELS,
    MICRO_PREFIX,
    WakeWordModelError,
    is_micro,
    resolve_micro_model,
)
from appliance.triggers.wakeword import DEFAULT_THRESHOLD, FRAME_SAMPLES, Detection, WakeWordDetector

__all__ = ["FileScan", "main_wakeword", "read_wav_16k", "scan_file", "score_file", "wake_setup"]


def read_wav_16k(path: str | Path) -> np.ndarray:
    """Read a PCM WAV file as 16 kHz mono int16 (channels averaged, resampled with soxr if needed)."""
    return read_wav(path, WAKE_RATE)[0]


@dataclass(frozen=True, slots=True)
class FileScan:
    """What a detector made of one WAV file: best scores per model and the wakes it would have caused."""

    scores: dict[str, float]
    verifier_scores: dict[str, float]
    detections: list[Detection]

    def woke(self, model: str) -> bool:
        return any(d.model == model for d in self.detections)


def scan_file(path: str | Path, detector: WakeWordDetector) -> FileScan:
    """Run ``detector`` (reset first) over a WAV file (any rate/channels) with 1 s of silence each side."""
    audio = read_wav_16k(path)
    detector.reset()
    pad = np.zeros(WAKE_RATE, dtype=np.int16)
    best = dict.fromkeys(detector.models, 0.0)
    best_verifier = dict.fromkeys(detector.verified, 0.0)
    detections: list[Detection] = []
    stream = np.concatenate((pad, audio, pad))
    for start in range(0, len(stream), FRAME_SAMPLES):
        detections += detector.process(stream[start : start + FRAME_SAMPLES])
        for table, scores in ((best, detector.scores), (best_verifier, detector.verifier_scores)):
            for name, score in scores.items():
                table[name] = max(table[name], score)
    return FileScan(best, best_verifier, detections)


def score_file(
    path: str | Path,
    models: Sequence[str] = (DEFAULT_MODEL,),
    *,
    detector: WakeWordDetector | None = None,
) -> dict[str, float]:
    """Maximum stock score of each model over a WAV file (see ``scan_file``).

    Pass ``detector`` to reuse a loaded one (it is reset first); otherwise one is created.
    """
    det = detector if detector is not None else WakeWordDetector(models)
    return scan_file(path, det).scores


def wake_setup(models: Sequence[str], thresholds: Mapping[str, float], verify: bool) -> dict[str, dict[str, Any]]:
    """What each configured model runs on, for ``appliance config``: its engine, the threshold it wakes
    at (a microWakeWord model's own cutoff unless ``thresholds`` names it) and whether the bundled
    verifier runs (openWakeWord's hey_jarvis only). Reads manifests, loads no model."""
    from appliance.triggers.verifier import bundled_verifier

    out: dict[str, dict[str, Any]] = {}
    for spec in models:
        entry: dict[str, Any] = {"engine": "microwakeword" if is_micro(spec) else "openwakeword"}
        try:
            if is_micro(spec):
                manifest = json.loads(resolve_micro_model(spec).read_text(encoding="utf-8"))
                cutoff = float(manifest["micro"]["probability_cutoff"])
                entry["threshold"] = thresholds.get(spec, cutoff)
                entry["threshold_from"] = "thresholds" if spec in thresholds else "model manifest"
                entry["verifier"] = "off (microWakeWord models have no verifier)"
            else:
                entry["threshold"] = thresholds.get(spec, DEFAULT_THRESHOLD)
                has = spec.strip() in BUNDLED_MODELS and bundled_verifier(spec.strip()) is not None
                entry["verifier"] = ("on" if verify else "off (APPLIANCE_WAKE__VERIFIER=false)") if has else "none"
        except (WakeWordModelError, OSError, ValueError, KeyError) as exc:
            entry["error"] = str(exc)
        out[spec] = entry
    return out


def main_wakeword(argv: Sequence[str] | None = None) -> int:
    """``appliance wakeword FILE.wav ...``: print one JSON line per file with each model's max score
    (scored with the enrolled profiles of the data directory); ``enroll`` and the other profile
    commands are in ``profile_cli.py``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from appliance.triggers.profile_cli import COMMANDS, main_profiles, profile_layers, settings_data_dir

    if argv[:1] and argv[0] in COMMANDS:
        return main_profiles(argv)
    parser = argparse.ArgumentParser(
        prog="appliance wakeword", description="Score WAV files with the local wake-word model(s)."
    )
    parser.add_argument("files", nargs="+", metavar="FILE.wav")
    parser.add_argument(
        "-m", "--model", action="append", dest="models", metavar="NAME|PATH",
        help=f"bundled openWakeWord name ({', '.join(BUNDLED_MODELS)}) or .tflite/.onnx path, or "
        f"microWakeWord {', '.join(MICRO_PREFIX + m for m in MICRO_MODELS)} or {MICRO_PREFIX}PATH.json; "
        f"repeatable (default {DEFAULT_MODEL})",
    )
    parser.add_argument("-t", "--threshold", type=float, default=None,
                        help=f"score counted as a detection, for every model (default {DEFAULT_THRESHOLD}; "
                        "a microWakeWord model's own probability cutoff)")
    parser.add_argument("--no-profiles", action="store_true", help="ignore the enrolled voices (stock rule only)")
    args = parser.parse_args(argv)
    try:
        detector = WakeWordDetector(args.models or [DEFAULT_MODEL], args.threshold)
        if not args.no_profiles:
            data_dir, learning, _keep, _model = settings_data_dir()
            detector.use_profiles(profile_layers(data_dir, learning))
    except (WakeWordModelError, ValueError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = 0
    for file in args.files:
        try:
            scan = scan_file(file, detector)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        result = {
            "file": file,
            "scores": {k: round(v, 4) for k, v in scan.scores.items()},
            **({"verifier_scores": {k: round(v, 4) for k, v in scan.verifier_scores.items()}}
               if scan.verifier_scores else {}),
            "detected": {k: scan.woke(k) for k in scan.scores},
            "profile": next((d.profile for d in scan.detections if d.profile is not None), None),
        }
        print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main_wakeword())
