"""The household's wake-word profiles: personal verifiers in the data directory, and how the detector uses them.

A profile is one person's personal verifier (``enrolment.py``) for one wake-word model, with a sample
of the speech embeddings it was trained from (so learning can retrain it) and no audio unless
``wake.keep_enrolment_audio`` is set. ``ProfileStore`` keeps them in the store's ``wake_profiles`` and
``wake_learned`` tables (schema in ``store.py``), so they survive restarts and image updates.

``PersonalLayer`` is what the detector consults each frame: a frame counts for a profile when that
profile's verifier is sure (``PersonalRule.alone``) *and* the stock model's score reaches a floor, so
the layer adds wakes for the voice it knows but stays about the phrase. It never removes a stock-rule
wake (except a learned replay with ``wake.learning=all``), so a guest still wakes it; without profiles
the detector is exactly as before. (Measured: the personal verifier also adds some wakes for other
voices, see the README's "Enrolled voices".) ``ProfileStream`` is one audio stream's memory for
learning: the last wake's window and the last near miss.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import numpy.typing as npt

from appliance.store import Store
from appliance.triggers.enrolment import DIM, PersonalVerifier, TrainedProfile, shipped_negatives
from appliance.triggers.features import EMBEDDING_DIM
from appliance.triggers.verifier import FEATURE_FRAMES

__all__ = [
    "LEARNED_LIMIT",
    "LearnedExample",
    "PersonalLayer",
    "PersonalRule",
    "Profile",
    "ProfileStore",
    "ProfileStream",
    "VOICE_MATCH",
    "layers_from",
]

LEARNED_LIMIT = 96  # learned windows kept per kind (a false wake keeps 3: 32 false wakes); the oldest dropped
KEPT_POSITIVES = 384  # training windows kept per profile, float16 (384 x 1536 x 2 bytes = 1.2 MB each kind)
KEPT_NEGATIVES = 384
NEAR_MISS_FLOOR = 0.05  # a stock score this high on a frame that did not wake: a near miss worth remembering
VOICE_MATCH = 0.5  # a personal score this high: the voice is probably that profile's, for learning
NEAR_MISS_WINDOW_S = 6.0  # a near miss this long before a wake of the same voice was probably the phrase
VETO_SIMILARITY = 0.9  # see PersonalLayer.vetoed
VETO_SHIFT = 4  # frames (320 ms) a replay may be early or late against the learned window
FOLLOW_FRAMES = (4, 8)  # frames after a wake whose windows a false wake keeps too (with the shift: 0-12 covered)
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class PersonalRule:
    """A frame counts for a profile when its verifier scores >= ``alone`` and the stock score >= ``floor``.

    0.97, not 0.9: at 0.9 the personal verifier added false wakes for other voices (a guest's near
    misses woke it more often than with no profile); at 0.97, with the verifier's stronger L2
    (``enrolment.VERIFIER_L2``), the other voices' false wakes stay as without profiles
    (docs/wake-word.md, "Enrolled voices")."""

    alone: float = 0.97
    floor: float = 0.1

    def hit(self, stock: float, personal: float) -> bool:
        return personal >= self.alone and stock >= self.floor


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    model: str
    takes: int
    verifier: PersonalVerifier
    positives: Float32Array
    own_negatives: Float32Array
    created_at: float


@dataclass(frozen=True, slots=True)
class LearnedExample:
    kind: str  # "false_wake" | "missed_wake"
    profile: str | None
    model: str
    window: Float32Array  # N x 1536 (a false wake: its wake frame and the utterance's next frames)


def _pack(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _sample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else x[np.sort(rng.choice(len(x), n, replace=False))]


class ProfileStore:
    """Profiles and learned examples in the data directory's database. Calls are short except ``save``
    (it compresses a few MB); each raises ``StoreFault`` when the database refuses a write."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, name: str, model: str, trained: TrainedProfile, audio: Iterable[np.ndarray] | None = None) -> None:
        """Add or replace the profile ``name``. ``audio``: the takes, kept only when given."""
        rng = np.random.default_rng(0)
        verifier = _pack(w=trained.verifier.w, b=np.array([trained.verifier.b], np.float32),
                         meta=np.array(json.dumps({"takes": trained.takes, "train_s": round(trained.train_s, 2)})))
        embeddings = _pack(positives=_sample(trained.positives, KEPT_POSITIVES, rng).astype(np.float16),
                           own_negatives=_sample(trained.own_negatives, KEPT_NEGATIVES, rng).astype(np.float16))
        takes = None if audio is None else _pack(**{f"take{i}": np.asarray(a, np.int16) for i, a in enumerate(audio)})
        self.store.execute(
            "INSERT INTO wake_profiles (name, model, takes, verifier, embeddings, audio, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET model = excluded.model,"
            " takes = excluded.takes, verifier = excluded.verifier, embeddings = excluded.embeddings,"
            " audio = excluded.audio, created_at = excluded.created_at",
            (name, model, trained.takes, verifier, embeddings, takes, time.time()))

    def replace_verifier(self, name: str, verifier: PersonalVerifier) -> None:
        """A retrained verifier (after learning) for an existing profile."""
        self.store.execute("UPDATE wake_profiles SET verifier = ? WHERE name = ?",
                           (_pack(w=verifier.w, b=np.array([verifier.b], np.float32)), name))

    def load(self) -> list[Profile]:
        rows = self.store.execute(
            "SELECT name, model, takes, verifier, embeddings, created_at FROM wake_profiles ORDER BY name")
        out = []
        for name, model, takes, verifier_blob, embeddings_blob, created_at in rows:
            v = _unpack(verifier_blob)
            e = _unpack(embeddings_blob)
            out.append(Profile(name, model, int(takes), PersonalVerifier(v["w"].astype(np.float32), float(v["b"][0])),
                               e["positives"].astype(np.float32), e["own_negatives"].astype(np.float32),
                               float(created_at)))
        return out

    def summary(self) -> list[dict[str, object]]:
        """Names and take counts only (what ``appliance config`` and listings show)."""
        rows = self.store.execute("SELECT name, model, takes, created_at, audio IS NOT NULL FROM wake_profiles"
                                  " ORDER BY name")
        return [{"name": n, "model": m, "takes": int(t), "created_at": round(float(c), 1), "audio_kept": bool(a)}
                for n, m, t, c, a in rows]

    def fingerprint(self) -> tuple[object, ...]:
        """What the detector's layers are made of, cheaply (a few KB per profile): the profiles (name,
        model, a digest of the verifier) and the learned examples (how many, the newest)."""
        profiles = self.store.execute("SELECT name, model, verifier FROM wake_profiles ORDER BY name")
        learned = self.store.execute("SELECT COUNT(*), MAX(id) FROM wake_learned")
        return (tuple((n, m, hashlib.blake2b(v, digest_size=8).hexdigest()) for n, m, v in profiles),
                tuple(learned[0]))

    def forget(self, name: str) -> bool:
        """Delete a profile and what was learned for it; False when there is none of that name."""
        with self.store.transaction() as db:
            gone = db.execute("DELETE FROM wake_profiles WHERE name = ?", (name,)).rowcount
            db.execute("DELETE FROM wake_learned WHERE profile = ?", (name,))
        return bool(gone)

    def add_learned(self, example: LearnedExample, limit: int = LEARNED_LIMIT) -> None:
        """Keep one learned example (its windows); only the newest ``limit`` windows of its kind stay."""
        with self.store.transaction() as db:
            for window in np.asarray(example.window, np.float16).reshape(-1, DIM):
                db.execute("INSERT INTO wake_learned (kind, profile, model, window, created_at) VALUES (?, ?, ?, ?, ?)",
                           (example.kind, example.profile, example.model, window.tobytes(), time.time()))
            db.execute("DELETE FROM wake_learned WHERE kind = ? AND id NOT IN (SELECT id FROM wake_learned"
                       " WHERE kind = ? ORDER BY id DESC LIMIT ?)", (example.kind, example.kind, limit))

    def learned(self, model: str, kind: str, profile: str | None = None) -> Float32Array:
        """Learned windows (N x 1536) of one kind; for ``profile`` its own and the household's (no profile)."""
        sql = "SELECT window FROM wake_learned WHERE model = ? AND kind = ?"
        params: list[object] = [model, kind]
        if profile is not None:
            sql += " AND (profile = ? OR profile IS NULL)"
            params.append(profile)
        rows = self.store.execute(sql + " ORDER BY id", params)
        if not rows:
            return np.zeros((0, DIM), np.float32)
        return np.stack([np.frombuffer(r[0], np.float16).astype(np.float32) for r in rows])

    def learned_models(self) -> set[str]:
        return {str(r[0]) for r in self.store.execute("SELECT DISTINCT model FROM wake_learned")}

    def learned_counts(self) -> dict[str, int]:
        return {k: int(n) for k, n in self.store.execute("SELECT kind, COUNT(*) FROM wake_learned GROUP BY kind")}

    def forget_learning(self) -> int:
        """Delete everything learned from mistakes; how many examples went."""
        rows = self.store.execute("SELECT COUNT(*) FROM wake_learned")
        self.store.execute("DELETE FROM wake_learned")
        return int(rows[0][0])


class PersonalLayer:
    """The enrolled profiles of one wake-word model, as the detector scores them (read-only once made).

    ``false_wakes``: learned false-wake windows; a wake whose window is as close to one of them as a
    replay of the same sound is (cosine >= ``VETO_SIMILARITY`` after removing what all speech shares,
    see ``vetoed``) does not happen: always for a wake only a profile made, and for the stock rule's
    too when ``veto_stock``."""

    def __init__(self, model: str, verifiers: Mapping[str, PersonalVerifier], rule: PersonalRule | None = None,
                 false_wakes: np.ndarray | None = None, veto_stock: bool = False) -> None:
        self.model = model
        self.rule = rule or PersonalRule()
        self._names = tuple(verifiers)
        self._w = (np.stack([v.w for v in verifiers.values()]).T.astype(np.float32) if verifiers
                   else np.zeros((DIM, 0), np.float32))
        self._b = np.array([v.b for v in verifiers.values()], np.float32)
        self.veto_stock = veto_stock
        self._false = _centred(np.zeros((0, DIM), np.float32) if false_wakes is None else false_wakes)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def active(self) -> bool:
        """Does this layer change anything (profiles to wake through, or learned false wakes to veto)?"""
        return bool(self._names) or bool(len(self._false))

    def best(self, window: np.ndarray) -> tuple[str | None, float]:
        """The profile that scores this window highest, and its score (None, 0 without profiles)."""
        if not self._names:
            return None, 0.0
        logits = np.clip(np.asarray(window, np.float32).reshape(DIM) @ self._w + self._b, -30, 30)
        i = int(np.argmax(logits))
        return self._names[i], float(1.0 / (1.0 + np.exp(-float(logits[i]))))

    def vetoed(self, window: np.ndarray) -> bool:
        """Is this window a replay of a learned false wake? The same sound heard again lines up with the
        learned window give or take a few frames, so each shift of up to ``VETO_SHIFT`` frames is
        compared on the frames the two share."""
        if not len(self._false):
            return False
        x = (np.asarray(window, np.float32).reshape(FEATURE_FRAMES, EMBEDDING_DIM)
             - _speech_mean().reshape(FEATURE_FRAMES, EMBEDDING_DIM))
        for shift in range(-VETO_SHIFT, VETO_SHIFT + 1):
            a = x[max(0, shift):FEATURE_FRAMES + min(0, shift)].reshape(-1)  # this window's frames ...
            b = self._false[:, max(0, -shift):FEATURE_FRAMES + min(0, -shift)].reshape(len(self._false), -1)
            cos = (b @ a) / (np.linalg.norm(b, axis=1) * np.linalg.norm(a) + 1e-6)  # ... against the learned
            if float(cos.max()) >= VETO_SIMILARITY:
                return True
        return False


@cache
def _speech_mean() -> Float32Array:
    """The mean window of speech in general (the shipped negatives): what every window shares."""
    negatives = shipped_negatives()
    return negatives.mean(axis=0) if len(negatives) else np.zeros(DIM, np.float32)


def layers_from(profiles: ProfileStore, learning: str = "personal", rule: PersonalRule | None = None
                ) -> dict[str, PersonalLayer]:
    """The detector's personal layer of each model, from the data directory (``learning``: the
    ``wake.learning`` setting; "off" ignores what was learned, "all" lets it veto the stock rule)."""
    by_model: dict[str, dict[str, PersonalVerifier]] = {}
    for p in profiles.load():
        by_model.setdefault(p.model, {})[p.name] = p.verifier
    models = set(by_model) | (profiles.learned_models() if learning == "all" else set())
    out = {}
    for model in models:
        false = profiles.learned(model, "false_wake") if learning != "off" else None
        out[model] = PersonalLayer(model, by_model.get(model, {}), rule, false, veto_stock=learning == "all")
    return {model: layer for model, layer in out.items() if layer.active}


def _centred(x: np.ndarray) -> Float32Array:
    """Windows (N x 16 x 96) less what all speech shares, so similarity is about this sound."""
    return (np.asarray(x, np.float32).reshape(-1, FEATURE_FRAMES, EMBEDDING_DIM)
            - _speech_mean().reshape(FEATURE_FRAMES, EMBEDDING_DIM))


@dataclass(slots=True)
class _NearMiss:
    at_sample: int
    stock: float
    profile: str | None
    window: Float32Array


@dataclass(slots=True)
class ProfileStream:
    """One detector stream's memory for learning (written by the detector's thread, read by the loop's:
    a deque's append and popleft are atomic, the last wake is replaced whole)."""

    last_wake: LearnedExample | None = None
    pending: deque[LearnedExample] = field(default_factory=lambda: deque(maxlen=8))
    _near: deque[_NearMiss] = field(default_factory=lambda: deque(maxlen=16))
    _since_wake: int = 1_000_000

    def frame(self, model: str, at_sample: int, stock: float, profile: str | None, window: np.ndarray,
              woke: bool, rate: int) -> None:
        """Called for every frame of a model with profiles: remembers near misses and wakes."""
        if woke:
            self._since_wake = 0
            self.last_wake = LearnedExample("false_wake", profile, model, np.array(window, np.float32).reshape(1, DIM))
            # A near miss by the same voice 1-6 s before (not the rise of this very utterance): the phrase,
            # said once too softly or too far away.
            earlier = [n for n in self._near if profile is not None and n.profile == profile
                       and rate <= at_sample - n.at_sample <= NEAR_MISS_WINDOW_S * rate]
            self._near.clear()
            if earlier:
                best = max(earlier, key=lambda n: n.stock)
                self.pending.append(LearnedExample("missed_wake", profile, model, best.window))
            return
        self._since_wake += 1
        wake = self.last_wake
        if wake is not None and self._since_wake in FOLLOW_FRAMES:
            # The rest of the utterance too: a replay must not wake on its next frames either.
            grown = np.concatenate((wake.window, np.array(window, np.float32).reshape(1, DIM)))
            self.last_wake = LearnedExample(wake.kind, wake.profile, wake.model, grown)
        if stock < NEAR_MISS_FLOOR:
            return
        last = self._near[-1] if self._near else None
        if last is not None and at_sample - last.at_sample < rate // 2:  # the same utterance: keep its best frame
            if stock > last.stock:
                self._near[-1] = _NearMiss(at_sample, stock, profile, np.array(window, np.float32).reshape(DIM))
            return
        self._near.append(_NearMiss(at_sample, stock, profile, np.array(window, np.float32).reshape(DIM)))
