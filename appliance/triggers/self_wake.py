"""Never wake on its own voice: ignore a wake word that the speaker's own output explains.

With a speaker next to the microphone, an answer that says the wake word ("just say hey Jarvis")
reaches the wake-word detector through the room. In ``gate`` and ``aec`` modes the detector hears
the raw microphone, so a second scorer (a twin of the detector: same models, its own streaming state)
runs on what the speaker played, and a microphone detection is ignored when the played audio scored
for the wake word, on the score that fired (stock or verifier), shortly before it (the echo comes
back a few tens of ms after the sound left the speaker). A person saying the wake word over an
answer that does not say it still wakes it: the played audio scores near 0 then. The same covers
earcons and anything else the player plays. The price: a person saying the wake word at the very
moment the answer says it is ignored too.

Threads: ``PlayedAudioTap.write`` runs in the PortAudio output callback (an append under a lock,
only while something plays and for a short tail after it); ``PlayedWakeFilter.update`` and
``explains`` run on the microphone pipeline's worker thread. At idle nothing is written, so the
twin never runs.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

import numpy as np

from appliance.audio.formats import WAKE_RATE
from appliance.audio.resample import StreamResampler

__all__ = ["EXPLAINS_SCORE", "EXPLAINS_VERIFIER_MARGIN", "EXPLAINS_VERIFIER_SCORE", "PlayedAudioTap",
           "PlayedWakeFilter", "WakeScorer", "played_wake_filter"]

EXPLAINS_SCORE = 0.3
"""A played 80 ms frame whose stock score reaches this explains a microphone detection. Below the
detection threshold (0.5) on purpose: the room colours the echo, so the clean played audio may score
a little differently from what the microphone heard. Ordinary speech scores near 0."""

EXPLAINS_VERIFIER_SCORE = 0.6
"""...or whose verifier score reaches this, for the first verifier (it wakes alone at 0.7); another
verifier's bar is its own rule's ``alone`` less ``EXPLAINS_VERIFIER_MARGIN`` (``played_wake_filter``).
The verifier is noisier on ordinary speech (single frames of "it is ten past three" reached 0.3), so
it needs a higher bar than the stock score, or a person's real wake word over an ordinary answer
could be ignored."""

EXPLAINS_VERIFIER_MARGIN = 0.1

LOOKBACK_S = 1.5
"""How long before a microphone detection the played audio may have scored (echo delay, the
detector's confirmation frames, the speaker's output latency)."""

LOOKAHEAD_S = 0.3
"""...and after it (the two scorers see the phrase in different 80 ms frame alignments)."""


class WakeScorer(Protocol):
    """A streaming wake-word detector's scoring side (``WakeWordDetector`` fits)."""

    def process(self, samples: np.ndarray) -> list: ...  # the detections are not used here

    @property
    def scores(self) -> dict[str, float]: ...

    @property
    def verifier_scores(self) -> dict[str, float]: ...

    @property
    def samples_fed(self) -> int: ...


class PlayedAudioTap:
    """What the speaker played, stamped with when it leaves the speaker; bounded, drops the oldest.

    Blocks are kept while audio plays and for ``tail_s`` of silence after it (so the twin's
    features settle back to silence), and not at all at idle.
    """

    def __init__(self, rate: int, tail_s: float = 1.5, max_blocks: int = 512) -> None:
        self.rate = rate
        self._tail_s = tail_s
        self._lock = threading.Lock()
        self._blocks: deque[tuple[float, np.ndarray]] = deque(maxlen=max_blocks)
        self._audible_at = float("-inf")
        self.dropped_blocks = 0

    def write(self, samples: np.ndarray, audible: bool, leaves_at: float) -> None:
        """PortAudio callback: the block just handed to the device and when its first sample plays."""
        if audible:
            self._audible_at = leaves_at
        elif leaves_at - self._audible_at > self._tail_s:
            return
        with self._lock:
            if len(self._blocks) == self._blocks.maxlen:
                self.dropped_blocks += 1
            self._blocks.append((leaves_at, samples.copy()))

    def take(self) -> list[tuple[float, np.ndarray]]:
        with self._lock:
            blocks = list(self._blocks)
            self._blocks.clear()
        return blocks


class PlayedWakeFilter:
    """Scores what the speaker played and says whether it explains a microphone detection."""

    def __init__(self, twin: WakeScorer, frame_samples: int,
                 verifier_bar: float = EXPLAINS_VERIFIER_SCORE) -> None:
        self._twin = twin
        self._frame = frame_samples
        self._verifier_bar = verifier_bar
        self._tap: PlayedAudioTap | None = None
        self._resampler: StreamResampler | None = None
        # When played frames that scored left the speaker, and whether the stock score did it.
        self._hits: deque[tuple[float, bool]] = deque(maxlen=64)
        self.played_s = 0.0  # played audio scored so far (bench and tests)

    def listen_to(self, rate: int) -> PlayedAudioTap:
        """A new tap for a player at ``rate`` (after every audio (re)open); give it to the player."""
        self._tap = PlayedAudioTap(rate)
        self._resampler = StreamResampler(rate, WAKE_RATE)
        return self._tap

    def update(self) -> None:
        """Pipeline thread: score everything played since the last call (nothing at idle)."""
        if self._tap is None or self._resampler is None:
            return
        for leaves_at, block in self._tap.take():
            samples = self._resampler.process(block)
            self.played_s += samples.size / WAKE_RATE
            pos = 0
            # Feed up to each 80 ms frame boundary, so every frame's score is read with its own time.
            while pos < samples.size:
                need = self._frame - self._twin.samples_fed % self._frame
                part = samples[pos : pos + need]
                self._twin.process(part)
                pos += part.size
                if part.size == need:
                    self._note_frame(leaves_at + pos / WAKE_RATE)

    def _note_frame(self, ended_at: float) -> None:
        stock = max(self._twin.scores.values(), default=0.0)
        verifier = max(self._twin.verifier_scores.values(), default=0.0)
        by_stock = stock >= EXPLAINS_SCORE
        if by_stock or verifier >= self._verifier_bar:
            self._hits.append((ended_at, by_stock))

    def explains(self, detected_at: float, stock_fired: bool) -> bool:
        """Did the played audio score for the wake word around ``detected_at`` (capture time), on the
        score that fired? A detection the stock score made needs the played audio's stock score: the
        verifier also scores tones and their silent tails (the timer's ring reached 0.96), which must
        not explain away a person's wake word said just after the ring."""
        return any(detected_at - LOOKBACK_S <= t <= detected_at + LOOKAHEAD_S and (stock or not stock_fired)
                   for t, stock in self._hits)


def played_wake_filter(detector: object) -> PlayedWakeFilter | None:
    """A filter scoring the speaker's output with a twin of ``detector`` (None if it cannot make one)."""
    from appliance.triggers.wakeword import FRAME_SAMPLES, WakeWordDetector

    if not isinstance(detector, WakeWordDetector):
        return None
    # A verifier shipped with a lower `alone` (it wakes on lower scores) needs a lower bar here too.
    alone = [rule.alone for rule in detector.verifier_rules.values()]
    bar = min([EXPLAINS_VERIFIER_SCORE, *(a - EXPLAINS_VERIFIER_MARGIN for a in alone)])
    return PlayedWakeFilter(detector.twin(), FRAME_SAMPLES, verifier_bar=bar)
