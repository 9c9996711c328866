#!/usr/bin/env python3
"""Build appliance/defaults/wake_negatives.npz: other voices' speech embeddings, the personal verifiers'
shared negatives (``triggers/enrolment.py``).

Made from the committed espeak-ng fixtures that are not the wake phrase (tests/fixtures/wake/neg/*.wav,
tests/fixtures/negative.wav, tests/fixtures/what_time_only.wav) and, with --voices, Kokoro *training*
voices (scripts/wake_voices.py TRAIN_VOICES, never an evaluation voice) saying the verifier's training
sentences. Every other 16 x 96 window of the speech, float16, compressed: well under 1 MB.
Run: python scripts/make_wake_negatives.py [--voices]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from appliance.triggers.engines.oww import OpenWakeWordEngine  # noqa: E402
from appliance.triggers.enrolment import NEGATIVES_FILE, take_windows  # noqa: E402
from appliance.triggers.wake_models import resolve_model  # noqa: E402
from appliance.triggers.wake_scan import read_wav_16k  # noqa: E402

# Ordinary sentences, none of them in the held-out evaluation's lists (wake_accuracy_heldout.py).
TEXTS = (
    "Hey Marcus, the bus is late again.", "Say, Garvin, is the oven on?", "Hey Jasper, feed the cat.",
    "Harvey bought a jar of pickles.", "I'll be there in ten minutes.", "Turn left at the next corner.",
    "Hey Carla, where did you park?", "The jam jar is empty.", "Hey Jarrod, close the window.",
    "Okay, let's start the washing machine.",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voices", action="store_true", help="add Kokoro training voices (needs [wake-eval])")
    args = parser.parse_args()
    engine = OpenWakeWordEngine.load({"hey_jarvis": resolve_model("hey_jarvis")})
    clips = [read_wav_16k(p) for p in sorted((ROOT / "tests/fixtures/wake/neg").glob("*.wav"))]
    clips += [read_wav_16k(ROOT / "tests/fixtures" / n) for n in ("negative.wav", "what_time_only.wav")]
    if args.voices:
        from wake_voices import TRAIN_VOICES, speaker

        rng = np.random.default_rng(7)
        for voice in TRAIN_VOICES[:4]:
            say = speaker(voice)
            for text in TEXTS:
                speech = say(text, rng)
                speech *= 0.05 / (np.sqrt(np.mean(speech**2)) + 1e-9)
                clips.append(np.clip(speech * 32768, -32768, 32767).astype(np.int16))
    windows = []
    for clip in clips:
        _, w = take_windows(engine, clip, "hey_jarvis")
        windows.append(w[12:-4:2])  # after the lead-in silence, every other frame
    out = np.concatenate(windows).astype(np.float16)
    np.savez_compressed(NEGATIVES_FILE, windows=out)
    print(f"{len(out)} windows from {len(clips)} clips -> {NEGATIVES_FILE} ({NEGATIVES_FILE.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
