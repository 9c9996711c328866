"""Enrolment: a person's takes of the wake phrase checked, augmented and trained into a personal verifier.

Everything here reads the embeddings of the project's feature pipeline (``features.py``), the same
16 x 96 windows the stock model and the shipped verifier read; no audio leaves this module unless the
caller keeps it. Training is plain numpy (logistic regression on the standardized window, gradient
descent) and blocks for a few seconds: run ``train_profile`` in a worker thread, never on the loop.

Why it is built this way (see the design notes' enrolment probe): trained against other voices only,
a personal model learns the voice, not the phrase, and wakes on the person's everyday speech. So the
negatives include the person's own speech that is not the whole phrase (the first part of each take,
the take reversed and shuffled in ~150 ms pieces: the same voice and sounds, not the phrase), learned
false wakes (``learning.py``), and other voices (``defaults/wake_negatives.npz``); and the detector lets
the personal score wake only where the stock model's score reaches a floor (``PersonalRule``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from appliance.audio.formats import WAKE_RATE
from appliance.triggers.engines.oww import OpenWakeWordEngine
from appliance.triggers.features import (
    EMBEDDING_DIM,
    EMBEDDING_MELS,
    FRAME_SAMPLES,
    MEL_INPUT_SAMPLES,
    FeatureModels,
)
from appliance.triggers.verifier import FEATURE_FRAMES

__all__ = [
    "DEFAULT_TAKES",
    "MIN_TAKES",
    "EnrolmentError",
    "PersonalVerifier",
    "TakeCheck",
    "TrainedProfile",
    "augment",
    "check_take",
    "shipped_negatives",
    "take_windows",
    "train_profile",
]

MIN_TAKES = 3
LEAD_FRAMES = 13  # whole 80 ms frames of silence before a take, so its frames line up with the take's own
DEFAULT_TAKES = 5
DIM = FEATURE_FRAMES * EMBEDDING_DIM
NEGATIVES_FILE = Path(__file__).resolve().parents[1] / "defaults" / "wake_negatives.npz"

# Take checks, in dBFS of 20 ms frames. A phone held at arm's length gives about -30 dBFS speech.
QUIET_DBFS = -38.0
SPEECH_ABOVE_FLOOR_DB = 12.0
MIN_SPEECH_S = 0.3
MAX_TAKE_S = 10.0
CLIP_LEVEL = 32_000
MAX_CLIPPED = 0.002  # fraction of samples at full scale
PHRASE_MIN_SCORE = 0.1  # the stock model's best score over the take: is the wake phrase in it at all?
# The personal verifier's L2 penalty (on standardized windows). 1e-3 fitted the takes' voice and room so
# closely that it fired on the person's everyday speech and on other voices; 1e-2 gives up some of the
# detection gain for far fewer added false wakes (docs/wake-word.md, "Enrolled voices").
VERIFIER_L2 = 1e-2

Float32Array = npt.NDArray[np.float32]


class EnrolmentError(ValueError):
    """Enrolment cannot go on (too few good takes, a take that cannot be read); the message says why."""


@dataclass(frozen=True, slots=True)
class TakeCheck:
    """One take's verdict: ``reason`` (for a person) when refused, the stock score and level either way."""

    ok: bool
    reason: str | None
    phrase_score: float
    speech_dbfs: float
    speech_s: float


def _frame_dbfs(audio: np.ndarray, size: int = 320) -> npt.NDArray[np.float64]:
    n = len(audio) // size
    if n == 0:
        return np.full(1, -120.0)
    frames = audio[: n * size].astype(np.float64).reshape(n, size) / 32768.0
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def take_windows(engine: OpenWakeWordEngine, audio: np.ndarray, model: str) -> tuple[
        npt.NDArray[np.float64], Float32Array]:
    """The stock score of ``model`` and the 16 x 96 embedding window of every 80 ms frame of ``audio``
    (int16, 16 kHz), with ``LEAD_FRAMES`` (~1 s) of silence before and 0.5 s after, from a fresh stream
    (``engine`` is forked)."""
    stream = engine.fork()
    pad = np.zeros(LEAD_FRAMES * FRAME_SAMPLES, np.int16)
    x = np.concatenate((pad, np.asarray(audio, np.int16), pad[: WAKE_RATE // 2]))
    n = len(x) // FRAME_SAMPLES
    scores = np.empty(n)
    windows = np.empty((n, FEATURE_FRAMES, EMBEDDING_DIM), np.float32)
    for i in range(n):
        scores[i] = stream.score_frame(x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])[model]
        windows[i] = stream.features.window(FEATURE_FRAMES)
    return scores, windows


def check_take(audio: np.ndarray, phrase_score: float, phrase: str = "hey jarvis") -> TakeCheck:
    """Is this take fit to learn from? ``phrase_score``: the stock model's best score over it."""
    audio = np.asarray(audio, np.int16)
    seconds = len(audio) / WAKE_RATE
    db = _frame_dbfs(audio)
    floor = float(np.percentile(db, 10))
    # Speech: frames well above the take's quiet part (or near its loudest, for a take with no pause).
    speech = db[db > max(min(floor + SPEECH_ABOVE_FLOOR_DB, float(db.max()) - 20.0), -60.0)]
    speech_s = len(speech) * 0.02
    level = float(10 * np.log10(np.mean(10 ** (speech / 10)))) if len(speech) else -120.0

    def verdict(reason: str | None) -> TakeCheck:
        return TakeCheck(reason is None, reason, round(phrase_score, 3), round(level, 1), round(speech_s, 2))

    if seconds > MAX_TAKE_S:
        return verdict(f"the take is {seconds:.0f} s long: say just the wake phrase, in under {MAX_TAKE_S:.0f} s")
    if speech_s < MIN_SPEECH_S:
        return verdict("no speech was heard in the take: say the wake phrase closer to the microphone")
    clipped = float(np.mean(np.abs(audio.astype(np.int32)) >= CLIP_LEVEL))
    if clipped > MAX_CLIPPED:
        return verdict("the take is distorted (too loud for the microphone): speak a little softer or "
                       "further away")
    if level < QUIET_DBFS:
        return verdict(f"the take is too quiet ({level:.0f} dBFS): speak louder or come closer")
    if phrase_score < PHRASE_MIN_SCORE:
        return verdict(f'"{phrase}" was not recognised in the take (score {phrase_score:.2f}): say the wake '
                       "phrase clearly, on its own")
    return verdict(None)


def _pink(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    y = np.fft.irfft(spectrum, n)
    return y / (np.std(y) + 1e-12)


def augment(take: np.ndarray, rng: np.random.Generator, copies: int,
            background: np.ndarray | None = None) -> list[npt.NDArray[np.int16]]:
    """``copies`` noisy versions of ``take`` (int16), sample-aligned with it (so its frame labels hold):
    the room's own ``background`` (when given) or white, pink or speech-shaped noise at 0-20 dB SNR, and
    a gain of -12..+6 dB. The first copy is the take itself."""
    x = np.asarray(take, np.float64)
    speech_power = float(np.mean(10 ** (_frame_dbfs(take) / 10)[_frame_dbfs(take) > -60])) if len(take) else 0.0
    speech_rms = np.sqrt(max(speech_power, 1e-12)) * 32768.0
    babble_src = x[::-1] / (np.std(x) + 1e-12)  # the voice reversed: speech-shaped, not the phrase
    out = [np.asarray(take, np.int16)]
    for _ in range(copies - 1):
        kind = int(rng.integers(4 if background is not None and len(background) > len(x) else 3))
        n = len(x)
        if kind == 0:
            noise = rng.standard_normal(n)
        elif kind == 1:
            noise = _pink(rng, n)
        elif kind == 2:
            noise = np.roll(babble_src, int(rng.integers(n))) + np.roll(babble_src, int(rng.integers(n)))
            noise /= np.std(noise) + 1e-12
        else:
            assert background is not None
            start = int(rng.integers(len(background) - n))
            noise = np.asarray(background[start:start + n], np.float64)
            noise /= np.std(noise) + 1e-12
        snr = rng.uniform(0.0, 20.0)
        y = (x + noise * speech_rms / 10 ** (snr / 20)) * 10 ** (rng.uniform(-12.0, 6.0) / 20)
        out.append(np.clip(y, -32768, 32767).astype(np.int16))
    return out


def _not_the_phrase(take: np.ndarray, rng: np.random.Generator) -> list[npt.NDArray[np.int16]]:
    """The person's voice saying something that is not the phrase: reversed, and shuffled in pieces."""
    x = np.asarray(take, np.int16)
    piece = int(0.15 * WAKE_RATE)
    chunks = [x[i:i + piece] for i in range(0, len(x), piece)]
    order = rng.permutation(len(chunks))
    return [x[::-1].copy(), np.concatenate([chunks[i] for i in order])]


def shipped_negatives() -> Float32Array:
    """Other voices' embedding windows (N x 1536), shipped with the appliance (see ``defaults/``)."""
    if not NEGATIVES_FILE.is_file():
        return np.zeros((0, DIM), np.float32)
    with np.load(NEGATIVES_FILE, allow_pickle=False) as data:
        return np.asarray(data["windows"], np.float32).reshape(-1, DIM)


@dataclass(frozen=True, slots=True)
class PersonalVerifier:
    """Logistic regression on one 16 x 96 window: ``score = sigmoid(w . x + b)`` (standardization folded in)."""

    w: Float32Array
    b: float

    def score_batch(self, windows: np.ndarray) -> npt.NDArray[np.float64]:
        x = np.asarray(windows, np.float32).reshape(len(windows), -1)
        logit = np.clip(x @ self.w + self.b, -30.0, 30.0).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-logit))

    def score(self, window: np.ndarray) -> float:
        return float(self.score_batch(np.asarray(window)[None])[0])


@dataclass(slots=True)
class TrainedProfile:
    """A personal verifier and the embeddings it was trained from (kept so learning can retrain it)."""

    verifier: PersonalVerifier
    positives: Float32Array  # N x 1536, float32
    own_negatives: Float32Array  # the person's speech that is not the phrase
    takes: int
    train_s: float
    checks: list[TakeCheck] = field(default_factory=list)


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, *, epochs: int = 300, l2: float = 1e-3,
                 lr: float = 0.05) -> PersonalVerifier:
    """Weighted logistic regression by full-batch gradient descent with Adam steps (numpy only)."""
    x = np.asarray(x, np.float32)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-3
    z = (x - mean) / std
    w = np.zeros(z.shape[1], np.float32)
    b = 0.0
    wsum = float(weights.sum())
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    mb = vb = 0.0
    for step in range(1, epochs + 1):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w + b, -30, 30)))
        err = ((p - y) * weights / wsum).astype(np.float32)
        gw = z.T @ err + l2 * w
        gb = float(err.sum())
        m = 0.9 * m + 0.1 * gw
        v = 0.999 * v + 0.001 * gw * gw
        mb = 0.9 * mb + 0.1 * gb
        vb = 0.999 * vb + 0.001 * gb * gb
        c1, c2 = 1 - 0.9**step, 1 - 0.999**step
        w -= lr * (m / c1) / (np.sqrt(v / c2) + 1e-8)
        b -= lr * (mb / c1) / (np.sqrt(vb / c2) + 1e-8)
    folded = (w / std).astype(np.float32)
    return PersonalVerifier(folded, float(b - (mean / std) @ w))


def frame_windows(models: FeatureModels, audio: np.ndarray, lo: int, hi: int) -> Float32Array:
    """The 16 x 96 windows of frames ``lo..hi`` of ``audio`` (int16, 16 kHz) exactly as a stream started
    from silence computes them, running the models only on the frames those windows depend on (about
    10 mel frames of context and 15 earlier embeddings): what makes training fast enough for a Pi."""
    x = np.asarray(audio, np.int16).astype(np.float32)
    n = len(x) // FRAME_SAMPLES
    hi = min(hi, n - 1)
    first_embedding = max(0, lo - (FEATURE_FRAMES - 1))
    first_mel = max(0, first_embedding - 10)
    mels = [models.silent_mels]
    context = MEL_INPUT_SAMPLES - FRAME_SAMPLES
    for j in range(first_mel, hi + 1):
        start = j * FRAME_SAMPLES - context
        chunk = x[max(0, start):(j + 1) * FRAME_SAMPLES]
        if start < 0:
            chunk = np.concatenate((np.zeros(-start, np.float32), chunk))
        mels.append(models.mels(chunk))
    mel = np.concatenate(mels)  # the silent history, then 8 mel frames per audio frame
    embeddings = [models.silent_embedding] * (FEATURE_FRAMES - 1)
    for j in range(first_embedding, hi + 1):
        end = len(models.silent_mels) + (j - first_mel + 1) * 8
        embeddings.append(models.embed(np.ascontiguousarray(mel[end - EMBEDDING_MELS:end])))
    emb = np.stack(embeddings)
    out = np.empty((max(0, hi - lo + 1), FEATURE_FRAMES, EMBEDDING_DIM), np.float32)
    for k, j in enumerate(range(lo, hi + 1)):
        e = j - first_embedding + FEATURE_FRAMES - 1  # index of frame j's embedding in emb
        out[k] = emb[e - FEATURE_FRAMES + 1:e + 1]
    return out


def take_examples(engine: OpenWakeWordEngine, take: np.ndarray, model: str, rng: np.random.Generator,
                  copies: int, background: np.ndarray | None = None) -> tuple[Float32Array, Float32Array]:
    """(positive, negative) windows of one take and its augmented copies.

    Positives: the frames up to the clean take's stock-score peak (the phrase just ended), in every
    copy (they are sample-aligned). Negatives: the clean take's frames more than ~0.6 s before the peak
    (part of the phrase), and the take reversed and shuffled (the voice, not the phrase), clean and noisy."""
    clean_scores, clean_windows = take_windows(engine, take, model)
    peak = int(np.argmax(clean_scores))
    lead = LEAD_FRAMES
    padded_peak = peak - lead  # the same frame counted from the take's first sample
    # From where the clean score rises (the stock rule and the shipped verifier wake on the rising
    # edge, and the profile should be sure by then) to just after the peak.
    rising = np.flatnonzero(clean_scores[:peak + 1] >= 0.05 * clean_scores[peak])
    first = max(int(rising[0]) if len(rising) else peak, peak - 5)
    pos: list[np.ndarray] = [clean_windows[first:peak + 3].reshape(-1, DIM)]
    neg: list[np.ndarray] = [clean_windows[lead:max(lead, peak - 8)].reshape(-1, DIM)]
    tail = np.zeros(WAKE_RATE // 2, np.int16)  # take_windows' silence after the take: the peak may lie in it
    for copy in augment(np.concatenate((take, tail)), rng, copies, background)[1:]:
        pos.append(frame_windows(engine.features.models, copy, first - lead, padded_peak + 2).reshape(-1, DIM))
    for other in _not_the_phrase(take, rng):
        for copy in augment(other, rng, 2, background):
            _, windows = take_windows(engine, copy, model)
            neg.append(windows[lead + 4:].reshape(-1, DIM))  # windows holding the voice
    return np.concatenate(pos).astype(np.float32), np.concatenate(neg).astype(np.float32)


def train_verifier(positives: np.ndarray, own_negatives: np.ndarray, learned_negatives: np.ndarray,
                   other_negatives: np.ndarray, extra_positives: np.ndarray | None = None) -> PersonalVerifier:
    """The personal verifier from its examples. Each group weighs the same in total, whatever its size
    (a few learned false wakes count as much as thousands of other voices' windows)."""
    groups = [(positives, 1.0, 1.0), (own_negatives, 0.0, 1.0), (other_negatives, 0.0, 1.0)]
    if extra_positives is not None and len(extra_positives):
        groups.append((extra_positives, 1.0, 0.5))
    if len(learned_negatives):
        groups.append((learned_negatives, 0.0, 1.0))
    xs, ys, ws = [], [], []
    for x, label, share in groups:
        if not len(x):
            continue
        xs.append(np.asarray(x, np.float32).reshape(len(x), DIM))
        ys.append(np.full(len(x), label, np.float32))
        ws.append(np.full(len(x), share / len(x), np.float32))
    return fit_logistic(np.concatenate(xs), np.concatenate(ys), np.concatenate(ws), l2=VERIFIER_L2)


def train_profile(engine: OpenWakeWordEngine, takes: Sequence[np.ndarray], model: str = "hey_jarvis", *,
                  copies: int = 32, background: np.ndarray | None = None, seed: int = 0,
                  own_speech: Sequence[np.ndarray] = (), learned_negatives: np.ndarray | None = None
                  ) -> TrainedProfile:
    """Check the takes, augment them and train a personal verifier (blocking: run it in a thread).

    ``takes``: int16 16 kHz audio; at least ``MIN_TAKES`` must pass ``check_take`` or ``EnrolmentError``
    says which failed and why. ``own_speech``: the person's ordinary speech, if recorded (more negatives).
    """
    started = time.perf_counter()
    checks = []
    good = []
    for take in takes:
        scores, _ = take_windows(engine, take, model)
        check = check_take(take, float(scores.max()))
        checks.append(check)
        if check.ok:
            good.append(np.asarray(take, np.int16))
    if len(good) < MIN_TAKES:
        problems = "; ".join(f"take {i + 1}: {c.reason}" for i, c in enumerate(checks) if not c.ok)
        raise EnrolmentError(f"{len(good)} of {len(checks)} takes are usable, at least {MIN_TAKES} are needed"
                             + (f" ({problems})" if problems else ""))
    rng = np.random.default_rng(seed)
    pos, own = [], []
    for take in good:
        p, n = take_examples(engine, take, model, rng, copies, background)
        pos.append(p)
        own.append(n)
    for speech in own_speech:
        for copy in augment(np.asarray(speech, np.int16), rng, 4, background):
            own.append(take_windows(engine, copy, model)[1].reshape(-1, DIM))
    positives = np.concatenate(pos)
    own_negatives = np.concatenate(own)
    learned = learned_negatives if learned_negatives is not None else np.zeros((0, DIM), np.float32)
    verifier = train_verifier(positives, own_negatives, learned, shipped_negatives())
    return TrainedProfile(verifier, positives, own_negatives, len(good), time.perf_counter() - started, checks)
