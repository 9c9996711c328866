#!/usr/bin/env python3
"""Does cleaning the audio before the wake word help the held-out voices in a room and in noise?

The held-out table (scripts/wake_accuracy_heldout.py) misses most in a reverberant room with babble.
This feeds the same trials (same voices, rooms, noise excerpts and detector seeds) through front ends
that could run on the device before openWakeWord, and prints the stock model's detection rate for each:

  none            the microphone as it is (the appliance today)
  speex-ns-15     SpeexDSP's preprocessor (the library the echo canceller already loads), denoiser at
  speex-ns-30     -15 / -30 dB
  speex-dereverb  the denoiser at -15 dB plus its dereverberation
  wpe             weighted prediction error dereverberation (nara_wpe), run *offline* over each whole
                  clip with full statistics: an upper bound for what an online dereverberator could do

Needs: pip install -e .[wake-eval]; espeak-ng; the clip cache of scripts/wake_accuracy_heldout.py
(built on first use). Run: python scripts/wake_frontends.py [--seed 1234] [--json PATH]
(about 15 minutes on 2 shared cores).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from wake_accuracy import NoiseBank  # noqa: E402
from wake_accuracy_heldout import NEAR_MISSES, SENTENCES, WAKE_TEXTS, FrontEnd, corpus, detection_rates  # noqa: E402
from wake_voices import EVAL_VOICES  # noqa: E402

from appliance.audio.aec import (  # noqa: E402
    _SPEEX_PREPROCESS_SET_DENOISE,
    _SPEEX_PREPROCESS_SET_DEREVERB,
    _SPEEX_PREPROCESS_SET_NOISE_SUPPRESS,
    load_speexdsp,
)
from appliance.audio.formats import WAKE_RATE, to_int16  # noqa: E402
from appliance.triggers.wakeword import WakeWordDetector  # noqa: E402

SPEEX_FRAME = WAKE_RATE // 100  # 10 ms


def speex_preprocess(suppress_db: int, dereverb: bool) -> FrontEnd:
    lib = load_speexdsp()

    def run(audio: np.ndarray) -> np.ndarray:
        state = lib.speex_preprocess_state_init(SPEEX_FRAME, WAKE_RATE)
        for request, value in ((_SPEEX_PREPROCESS_SET_DENOISE, 1), (_SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, suppress_db),
                               (_SPEEX_PREPROCESS_SET_DEREVERB, int(dereverb))):
            lib.speex_preprocess_ctl(state, request, ctypes.byref(ctypes.c_int(value)))
        out = np.array(audio, np.int16)
        try:
            for start in range(0, len(out) - SPEEX_FRAME + 1, SPEEX_FRAME):
                frame = np.ascontiguousarray(out[start : start + SPEEX_FRAME])
                lib.speex_preprocess_run(state, frame.ctypes.data)
                out[start : start + SPEEX_FRAME] = frame
        finally:
            lib.speex_preprocess_state_destroy(state)
        return out

    return run


def wpe_offline(taps: int = 10, delay: int = 3, iterations: int = 3) -> FrontEnd:
    from nara_wpe.utils import istft, stft
    from nara_wpe.wpe import wpe

    def run(audio: np.ndarray) -> np.ndarray:
        x = audio.astype(np.float64) / 32768
        spec = stft(x[None], size=512, shift=128).transpose(2, 0, 1)  # (bins, channels, frames)
        clean = wpe(spec, taps=taps, delay=delay, iterations=iterations, statistics_mode="full")
        return to_int16(istft(clean.transpose(1, 2, 0), size=512, shift=128)[0][: len(x)] * 32768)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "wake_heldout")
    parser.add_argument("--json", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    positives: dict[str, np.ndarray] = {}
    negatives: list[np.ndarray] = []
    for voice in EVAL_VOICES:
        pos, neg = corpus(voice, args.cache, args.seed)
        positives |= {f"{voice}/{WAKE_TEXTS[i % len(WAKE_TEXTS)]}#{i}": x for i, x in enumerate(pos)}
        negatives += neg
    assert len(negatives) == len(EVAL_VOICES) * len(NEAR_MISSES + SENTENCES)
    # The same draws as wake_accuracy_heldout.py: its "none" column reproduces that script's stock column.
    rng = np.random.default_rng(args.seed)
    noise = NoiseBank(rng, negatives)
    det = WakeWordDetector(["hey_jarvis"], thresholds=args.threshold, verify=False)
    front_ends = {"none": lambda audio: audio, "speex-ns-15": speex_preprocess(-15, False),
                  "speex-ns-30": speex_preprocess(-30, False), "speex-dereverb": speex_preprocess(-15, True),
                  "wpe": wpe_offline()}
    rates = detection_rates(det, positives, noise, rng, front_ends=front_ends)
    table = {fe: {c.name: round(c.rate, 4) for c in conds} for fe, conds in rates.items()}
    labels = [c.name for c in rates["none"]]
    width = max(map(len, labels)) + 2
    print(f"held-out voices {', '.join(EVAL_VOICES)}, stock model, threshold {args.threshold}, "
          f"{len(positives)} clips per condition")
    print(f"{'condition':<{width}}" + "".join(f"{fe:>16}" for fe in front_ends))
    for label in labels:
        print(f"{label:<{width}}" + "".join(f"{table[fe][label]:>16.1%}" for fe in front_ends))
    result = {"voices": list(EVAL_VOICES), "threshold": args.threshold, "seed": args.seed,
              "detection": table, "wall_s": round(time.perf_counter() - t0, 1)}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
