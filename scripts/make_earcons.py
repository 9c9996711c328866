#!/usr/bin/env python3
"""Generate the earcons shipped in appliance/defaults/earcons/ (24 kHz mono 16-bit WAV).

Short, soft sine chimes with raised-cosine envelopes (no clicks): wake rises, done falls,
error is a low double buzz, timer a bright triple beep. Run again after changing a tone: python scripts/make_earcons.py
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 24000
OUT = Path(__file__).resolve().parents[1] / "appliance" / "defaults" / "earcons"


def tone(freq: float, ms: int, level: float = 0.35, harmonics: float = 0.15) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    wave_ = np.sin(2 * np.pi * freq * t) + harmonics * np.sin(2 * np.pi * 2 * freq * t)
    ramp = min(len(t) // 4, RATE * 8 // 1000)
    env = np.ones_like(t)
    env[:ramp] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    decay = np.exp(-3.0 * t / t[-1])
    env *= decay
    env[-ramp:] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    return level * wave_ * env / (1 + harmonics)


def gap(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000)


SOUNDS = {
    "wake": [tone(880, 70), tone(1320, 90)],
    "done": [tone(1320, 70), tone(880, 110)],
    "error": [tone(220, 120, harmonics=0.5), gap(60), tone(220, 120, harmonics=0.5)],
    # A due timer: a bright triple beep, repeated until dismissed.
    "timer": [tone(1568, 90), gap(70), tone(1568, 90), gap(70), tone(2093, 160)],
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, parts in SOUNDS.items():
        samples = (np.concatenate(parts) * 32767).astype(np.int16)
        with wave.open(str(OUT / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(samples.tobytes())
        print(f"{name}.wav: {len(samples) / RATE * 1000:.0f} ms")


if __name__ == "__main__":
    main()
