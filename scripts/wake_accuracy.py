#!/usr/bin/env python3
"""Wake-word accuracy: detection rate in noise and false wakes over >= 10 minutes of other speech.

Inputs are the committed clips in tests/fixtures/wake/ (scripts/make_wake_fixtures.sh):
  pos/  "hey jarvis" (espeak-ng en, en-us, en-gb-x-rp, en-gb-scotland; default and +f2 voices;
        130-190 wpm; with and without a comma pause)
  neg/  other sentences, including near misses ("hey Travis", "harvest", "jars", "hey Mycroft")

Detection rate: every positive clip, 1 s of lead-in and 1.5 s of tail, mixed with white, pink and
babble noise (numpy, seeded) at 20 dB and 10 dB SNR (speech power over the clip / noise power),
plus clean. A fresh (reset) detector per trial; a trial counts if the detector wakes at least once.

False wakes: a >= 10 minute stream built at run time from the negative clips (random order, gain
+-6 dB, speed 0.9-1.1x via soxr, gaps 0.2-1.5 s), with noise changing every 30 s through
{none, white, pink, babble} x {20 dB, 10 dB}; one detector runs over it without resets.

--sweep additionally synthesizes "hey jarvis" with espeak-ng at run time over more English
voices/variants (including accents the model handles poorly) and reports clean detection per voice.

The detector is the appliance's own: the stock model plus its bundled verifier where one ships
(hey_jarvis); --no-verifier measures the stock model alone.

Prints a table and a JSON document (also written to --json PATH if given).
Run: python scripts/wake_accuracy.py [--threshold 0.5] [--minutes 10] [--no-verifier] [--sweep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.audio.formats import WAKE_RATE  # noqa: E402
from appliance.triggers.wake_scan import read_wav_16k  # noqa: E402
from appliance.triggers.wakeword import FRAME_SAMPLES, WakeWordDetector  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "wake"
SPEECH_RMS = 0.05  # speech normalized to about -26 dBFS before noise is added
NOISES = ("white", "pink", "babble")
SNRS_DB = (20.0, 10.0)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def to_int16(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0.99:  # scale the whole mix down: keeps the SNR, avoids clipping
        x = x * (0.99 / peak)
    return np.round(x * 32767).astype(np.int16)


def load_clips(folder: Path) -> dict[str, np.ndarray]:
    clips = {p.stem: read_wav_16k(p).astype(np.float32) / 32768 for p in sorted(folder.glob("*.wav"))}
    if not clips:
        raise SystemExit(f"no clips in {folder}; run scripts/make_wake_fixtures.sh")
    return clips


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch, like sox ``speed``)."""
    return soxr.resample(x, WAKE_RATE * factor, WAKE_RATE).astype(np.float32)


class NoiseBank:
    """60 s of each seeded noise type; trials take random excerpts, scaled to unit RMS."""

    def __init__(self, rng: np.random.Generator, negatives: list[np.ndarray], seconds: float = 60.0) -> None:
        n = int(seconds * WAKE_RATE)
        self.rng = rng
        self.bank = {
            "white": self._unit(rng.standard_normal(n)),
            "pink": self._unit(self._pink(rng, n)),
            "babble": self._unit(self._babble(rng, negatives, n)),
        }

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        x = x - np.mean(x)
        return (x / rms(x)).astype(np.float32)

    @staticmethod
    def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / WAKE_RATE)
        f[0] = f[1]
        return np.fft.irfft(spectrum / np.sqrt(f), n)

    @staticmethod
    def _babble(
        rng: np.random.Generator, negatives: list[np.ndarray], n: int, talkers: int = 6
    ) -> np.ndarray:
        out = np.zeros(n, dtype=np.float64)
        for _ in range(talkers):
            track: list[np.ndarray] = []
            length = 0
            while length < n:
                clip = speed(negatives[rng.integers(len(negatives))], float(rng.uniform(0.85, 1.15)))
                clip = clip / max(rms(clip), 1e-9)
                track.append(clip)
                track.append(np.zeros(int(rng.uniform(0.0, 0.3) * WAKE_RATE), dtype=np.float32))
                length += len(clip) + len(track[-1])
            out += np.concatenate(track)[:n]
        return out

    def excerpt(self, kind: str, n: int) -> np.ndarray:
        src = self.bank[kind]
        if n > len(src):
            src = np.tile(src, n // len(src) + 1)
        start = int(self.rng.integers(0, len(src) - n + 1))
        return src[start : start + n]


@dataclass
class Condition:
    name: str
    trials: int = 0
    detected: int = 0
    scores: list[float] = field(default_factory=list)
    verifier_scores: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.detected / self.trials if self.trials else 0.0

    def trial(self, det: WakeWordDetector, audio: np.ndarray, name: str,
              on_frame: Callable[[WakeWordDetector], None] | None = None) -> None:
        """Feed one clip (after the caller has seeded and reset `det`) frame by frame and record it;
        `on_frame` sees the detector after every whole frame."""
        model = det.models[0]
        woke = False
        best = best_verifier = 0.0
        for start in range(0, len(audio), FRAME_SAMPLES):
            woke |= bool(det.process(audio[start : start + FRAME_SAMPLES]))
            if on_frame is not None and start + FRAME_SAMPLES <= len(audio):
                on_frame(det)
            best = max(best, det.scores[model])
            best_verifier = max(best_verifier, det.verifier_scores.get(model, 0.0))
        self.trials += 1
        self.detected += woke
        self.scores.append(best)
        self.verifier_scores.append(best_verifier)
        if not woke:
            self.missed.append(name)


def detection_rates(
    det: WakeWordDetector, positives: dict[str, np.ndarray], noise: NoiseBank, rng: np.random.Generator
) -> list[Condition]:
    lead, tail = int(1.0 * WAKE_RATE), int(1.5 * WAKE_RATE)
    conditions: list[tuple[str, str | None, float | None]] = [("clean", None, None)]
    conditions += [(f"{kind} {snr:g} dB", kind, snr) for snr in SNRS_DB for kind in NOISES]
    results = []
    for label, kind, snr in conditions:
        cond = Condition(label)
        for i, (name, clip) in enumerate(positives.items()):
            speech = clip * (SPEECH_RMS / max(rms(clip), 1e-9))
            mix = np.concatenate((np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)))
            if kind is not None and snr is not None:
                mix = mix + noise.excerpt(kind, len(mix)) * (SPEECH_RMS / 10 ** (snr / 20))
            np.random.seed(int(rng.integers(2**31)) + i)
            det.reset()
            cond.trial(det, to_int16(mix), name)
        results.append(cond)
    return results


def false_wake_stream(
    negatives: dict[str, np.ndarray], noise: NoiseBank, rng: np.random.Generator, minutes: float
) -> tuple[np.ndarray, list[str], list[tuple[int, str]]]:
    """The negative stream, the noise label of each 30 s segment, and (start sample, clip name) placements."""
    total = int(minutes * 60 * WAKE_RATE)
    names = list(negatives)
    parts: list[np.ndarray] = []
    placed: list[tuple[int, str]] = []
    length = 0
    while length < total:
        name = names[int(rng.integers(len(names)))]
        placed.append((length, name))
        clip = speed(negatives[name], float(rng.uniform(0.9, 1.1)))
        clip = clip * (SPEECH_RMS / max(rms(clip), 1e-9)) * 10 ** (rng.uniform(-6, 6) / 20)
        gap = np.zeros(int(rng.uniform(0.2, 1.5) * WAKE_RATE), np.float32)
        parts += [clip, gap]
        length += len(clip) + len(gap)
    speech = np.concatenate(parts)[:total]
    segment = 30 * WAKE_RATE
    plan = [(None, None)] + [(k, s) for s in SNRS_DB for k in NOISES]
    labels = []
    out = speech.astype(np.float64).copy()
    for j, start in enumerate(range(0, total, segment)):
        kind, snr = plan[j % len(plan)]
        labels.append("clean" if kind is None else f"{kind} {snr:g} dB")
        if kind is None or snr is None:
            continue
        seg = slice(start, min(start + segment, total))
        out[seg] += noise.excerpt(kind, seg.stop - seg.start) * (SPEECH_RMS / 10 ** (snr / 20))
    return to_int16(out), labels, placed


def clip_at(placed: list[tuple[int, str]], sample: int) -> str:
    """Name of the last clip that started at least 0.3 s before ``sample`` (wakes fire after the words)."""
    name = placed[0][1]
    for start, clip in placed:
        if start > sample - int(0.3 * WAKE_RATE):
            break
        name = clip
    return name


def sweep(det: WakeWordDetector, seed: int) -> list[Condition]:
    """Clean detection per espeak-ng voice over more voices than the committed set (needs espeak-ng, sox)."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        print("sweep skipped: espeak-ng/sox not found", file=sys.stderr)
        return []
    voices = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan",
              "en-gb-x-gbcwmd"]
    variants = ["", "+f2", "+f3", "+m3", "+klatt"]
    texts = {"plain": "hey jarvis", "comma": "hey, jarvis"}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        raw, wav = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        for voice in voices:
            cond = Condition(voice)
            for variant in variants:
                for wpm in (130, 160, 190):
                    for tag, text in texts.items():
                        espeak = ["espeak-ng", "-v", voice + variant, "-s", str(wpm), "-w", str(raw), text]
                        subprocess.run(espeak, check=True)
                        trim = ["silence", "1", "0.02", "0.5%", "reverse"]
                        sox = ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav)]
                        subprocess.run(sox + trim + trim + ["pad", "0.05", "0.05"], check=True)
                        clip = read_wav_16k(wav)
                        audio = np.concatenate((np.zeros(16000, np.int16), clip, np.zeros(24000, np.int16)))
                        np.random.seed(seed + cond.trials)
                        det.reset()
                        woke = bool(det.process(audio))
                        cond.trials += 1
                        cond.detected += woke
                        if not woke:
                            cond.missed.append(f"{variant or 'default'}/{wpm}/{tag}")
            results.append(cond)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="hey_jarvis")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--minutes", type=float, default=10.0, help="false-wake stream length (default 10)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-verifier", action="store_true", help="the stock model alone (no bundled verifier)")
    parser.add_argument("--sweep", action="store_true", help="also sweep more espeak-ng voices (clean)")
    parser.add_argument("--json", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    rng = np.random.default_rng(args.seed)
    positives = load_clips(FIXTURES / "pos")
    negatives = load_clips(FIXTURES / "neg")
    noise = NoiseBank(rng, list(negatives.values()))
    det = WakeWordDetector([args.model], thresholds=args.threshold, verify=not args.no_verifier)

    rates = detection_rates(det, positives, noise, rng)
    stream, labels, placed = false_wake_stream(negatives, noise, rng, args.minutes)
    np.random.seed(args.seed)
    det.reset()
    wakes = det.process(stream)
    seconds = len(stream) / WAKE_RATE
    swept = sweep(det, args.seed) if args.sweep else []

    result: dict[str, object] = {
        "model": args.model,
        "threshold": args.threshold,
        "verifier": bool(det.verified),
        "positive_clips": len(positives),
        "detection": {
            c.name: {"rate": round(c.rate, 4), "detected": c.detected, "trials": c.trials,
                     "median_max_score": round(float(np.median(c.scores)), 4),
                     **({"median_max_verifier_score": round(float(np.median(c.verifier_scores)), 4)}
                        if det.verified else {}),
                     "missed": c.missed}
            for c in rates
        },
        "false_wakes": {
            "count": len(wakes),
            "audio_minutes": round(seconds / 60, 2),
            "per_hour": round(len(wakes) / (seconds / 3600), 2),
            "by_clip": {name: n for name in negatives
                        if (n := sum(clip_at(placed, w.at_sample) == name for w in wakes))},
            "events": [{"at_s": round(w.at_s, 2), "score": round(w.score, 4),
                        "segment": labels[int(w.at_s // 30)], "clip": clip_at(placed, w.at_sample)}
                       for w in wakes],
        },
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
    }
    if swept:
        result["sweep_clean"] = {
            c.name: {"rate": round(c.rate, 4), "detected": c.detected, "trials": c.trials, "missed": c.missed}
            for c in swept
        }

    width = max(len(c.name) for c in rates + swept) + 2
    kind = "stock model + verifier" if det.verified else "stock model"
    print(f"wake word {args.model!r} ({kind}), threshold {args.threshold}, {len(positives)} positive clips")
    print(f"{'condition':<{width}}{'detected':>12}{'rate':>9}{'median max score':>18}"
          + (f"{'(verifier)':>12}" if det.verified else ""))
    for c in rates:
        print(f"{c.name:<{width}}{f'{c.detected}/{c.trials}':>12}{c.rate:>9.1%}{float(np.median(c.scores)):>18.3f}"
              + (f"{float(np.median(c.verifier_scores)):>12.3f}" if det.verified else ""))
    print(f"false wakes: {len(wakes)} in {seconds / 60:.1f} min of other speech + noise")
    if swept:
        print("sweep (clean; voices x {default,+f2,+f3,+m3,+klatt} x {130,160,190} wpm x {plain,comma}):")
        for c in swept:
            print(f"  {c.name:<{width}}{f'{c.detected}/{c.trials}':>12}{c.rate:>9.1%}")
    print(f"took {result['wall_s']} s wall, {result['cpu_s']} s CPU")
    doc = json.dumps(result, indent=2)
    print(doc)
    if args.json:
        args.json.write_text(doc + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
