"""Run the wake-word detector over WAV files, and the ``appliance wakeword FILE.wav ...`` command.

Used by the command, ``appliance check`` and the accuracy scripts; the running appliance streams
microphone audio into ``WakeWordDetector`` directly and never needs this module.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.audio.formats import WAKE_RATE
from appliance.audio.wavfile import read_wav
from appliance.store import StoreError
from appliance.triggers.wake_models import BUNDLED_MODELS, DEFAULT_MODEL, WakeWordModelError
from appliance.triggers.wakeword import DEFAULT_THRESHOLD, FRAME_SAMPLES, Detection, WakeWordDetector

__all__ = ["FileScan", "main_wakeword", "read_wav_16k", "scan_file", "score_file"]


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
        help=f"bundled name ({', '.join(BUNDLED_MODELS)}) or .tflite/.onnx path; repeatable "
        f"(default {DEFAULT_MODEL})",
    )
    parser.add_argument("-t", "--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="score counted as a detection (default %(default)s)")
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
