"""Is what the model heard while the agent spoke the agent's own echo, or a person?

Issue 18 item 8: through a PulseAudio loop (speaker 40 ms into the mic at -9 dB; measured echo lag
steady at 66 ms, so not misaligned) the canceller met its trust test (ERLE >= 10 dB; it reached
14-22 dB) and stayed trusted, but that off a loud echo still leaves 20-ms bursts of 260-370 RMS at
the answer's loud onsets: speech to the model's VAD, which cut the answer off 2-3 s in.

Two facts tell the echo's remnant from a person talking over the answer, measured on that capture
with a person mixed in (0, -6, -12 dB under the echo):
- a person is not cancelled: with one talking, the residual is about as loud as the microphone
  (0-6 dB below it over its loud frames; up to 10 dB when the echo is louder than the person, so
  this alone does not decide); a loud residual the canceller took >= `REMNANT_ERLE_DB` below the
  microphone and that still follows the reference a little is what is left of the echo (12-15 dB
  there);
- a canceller that cancels nothing (the echo moved against the reference, it diverged) leaves a
  residual that still follows the reference (normalised cross-correlation 0.99 with no cancelling,
  0.3-0.5 for the remnant, 0.07-0.29 for a person over it, at most 0.25 over the pipeline's own
  checks of a person at 0/-6/-12 dB; 0.62-0.67 for a synthetic echo whose delay wobbles by 0.5 ms,
  tests/test_echo_alignment.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .formats import MODEL_RATE

FRAME = MODEL_RATE // 50  # 20 ms, the canceller's frame
LOUD_FRAME_RMS = 200.0  # a residual frame this loud is speech to a VAD (the fake server's is 300)
REMNANT_ERLE_DB = 8.0  # a loud residual this far below the mic is the echo's remnant, not a person
REMNANT_CORR = 0.3  # ... and still follows the reference a little (a person quieter than the echo: no)
FOLLOWS_REFERENCE_CORR = 0.45  # the residual still follows what the speaker played: nothing cancelled
MAX_ECHO_LAG_S = 0.3  # how far behind the reference the echo in the residual is looked for
FAR_END_ACTIVE_RMS = 100.0  # the reference this loud: the agent is speaking
HISTORY_S = 1.5


def loudest_frame_rms(x: np.ndarray) -> float:
    """RMS of the loudest 20-ms frame of `x` (0 for an empty block)."""
    n = x.size // FRAME * FRAME
    if n == 0:
        return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0
    frames = x[:n].astype(np.float64).reshape(-1, FRAME)
    return float(np.sqrt(np.max(np.mean(frames**2, axis=1))))


def loud_frame_energies(mic: np.ndarray, residual: np.ndarray) -> tuple[float, float]:
    """(microphone, residual) energy over the residual's loud 20-ms frames, each against the louder of
    the microphone frame it came from and the one before (the canceller runs a frame behind). Over
    the loud frames only: a person's first syllable next to seconds of well-cancelled echo is loud
    in the residual and in the microphone alike."""
    n = min(mic.size, residual.size) // FRAME
    if n == 0:
        return 0.0, 0.0
    m = np.mean(mic[mic.size - n * FRAME :].astype(np.float64).reshape(n, FRAME) ** 2, axis=1)
    r = np.mean(residual[residual.size - n * FRAME :].astype(np.float64).reshape(n, FRAME) ** 2, axis=1)
    m = np.maximum(m, np.concatenate([[0.0], m[:-1]]))
    loud = r > LOUD_FRAME_RMS**2
    return float(np.sum(m[loud])), float(np.sum(r[loud]))


def ratio_db(numerator: float, denominator: float) -> float:
    return float(10 * np.log10(max(numerator, 1.0) / max(denominator, 1.0)))


def erle_db(mic: np.ndarray, residual: np.ndarray) -> float:
    m = float(np.sum(mic.astype(np.float64) ** 2))
    r = float(np.sum(residual.astype(np.float64) ** 2))
    return float(10 * np.log10(max(m, 1.0) / max(r, 1.0)))


def follows_reference(residual: np.ndarray, reference: np.ndarray, max_lag: int) -> float:
    """Largest normalised cross-correlation of `residual` with `reference` delayed by 0..`max_lag`
    samples (`reference` holds `max_lag` more samples, before the residual's span)."""
    x = residual.astype(np.float64)
    y = reference.astype(np.float64)
    w = x.size
    if w == 0 or y.size < w:
        return 0.0
    lags = y.size - w + 1
    size = 1 << int(np.ceil(np.log2(y.size + w)))
    corr = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)[:lags]
    cumulative = np.concatenate([[0.0], np.cumsum(y**2)])
    energy_y = cumulative[w : w + lags] - cumulative[:lags]
    denominator = np.sqrt(float(np.sum(x**2)) * energy_y) + 1e-9
    return float(np.max(np.abs(corr) / denominator))


@dataclass(frozen=True)
class EchoVerdict:
    echo: bool  # what the model heard is the agent's own voice
    erle_db: float  # over the residual's loud frames
    loudest_rms: float
    correlation: float


def judge(mic: np.ndarray, residual: np.ndarray, reference: np.ndarray, max_lag: int) -> EchoVerdict:
    """`mic` and `residual` (what went to the model) over the same span; `reference` over that span
    plus `max_lag` samples before it."""
    loudest = loudest_frame_rms(residual)
    erle = ratio_db(*loud_frame_energies(mic, residual))
    playing = reference.size > 0 and float(np.sqrt(np.mean(reference.astype(np.float64) ** 2))) > FAR_END_ACTIVE_RMS
    if not playing or loudest <= LOUD_FRAME_RMS:  # the agent was silent, or the model got nothing loud
        return EchoVerdict(False, erle, loudest, 0.0)
    corr = follows_reference(residual, reference, max_lag)
    echo = corr >= FOLLOWS_REFERENCE_CORR or (erle >= REMNANT_ERLE_DB and corr >= REMNANT_CORR)
    return EchoVerdict(echo, erle, loudest, corr)


class EchoHistory:
    """The last `HISTORY_S` of microphone, reference and model-bound residual at 24 kHz.

    Written by the microphone worker, read on the event loop when the model reports speech."""

    def __init__(self, seconds: float = HISTORY_S) -> None:
        self._size = int(seconds * MODEL_RATE)
        self._lock = threading.Lock()
        self._mic = np.zeros(0, dtype=np.int16)
        self._ref = np.zeros(0, dtype=np.int16)
        self._res = np.zeros(0, dtype=np.int16)

    def add(self, mic: np.ndarray, reference: np.ndarray, residual: np.ndarray) -> None:
        with self._lock:
            self._mic = np.concatenate([self._mic, mic])[-self._size :]
            self._ref = np.concatenate([self._ref, reference])[-self._size :]
            self._res = np.concatenate([self._res, residual])[-self._size :]

    def mute_last(self, n: int) -> None:
        """The last `n` residual samples were withheld from the model."""
        if n > 0:
            with self._lock:
                self._res = self._res.copy()
                self._res[-n:] = 0

    def judge_last(self, seconds: float = 1.0) -> EchoVerdict:
        """Was the last `seconds` the model heard the agent's echo?"""
        w = int(seconds * MODEL_RATE)
        max_lag = int(MAX_ECHO_LAG_S * MODEL_RATE)
        with self._lock:
            mic, ref, res = self._mic, self._ref, self._res
        w = min(w, mic.size, res.size)
        if w == 0:
            return EchoVerdict(False, 0.0, 0.0, 0.0)
        # The residual runs a frame or so behind the microphone (the canceller buffers whole frames).
        lag_room = min(max_lag, ref.size - w)
        return judge(mic[-w:], res[-w:], ref[ref.size - w - lag_room :], lag_room)
