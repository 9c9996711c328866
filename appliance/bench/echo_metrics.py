"""Synthetic echo paths and echo-cancellation quality metrics.

Used by ``tests/test_aec.py`` and the ``aec`` bench group (``appliance.bench.aec``); no hardware needed.

The synthetic room is linear: the far-end (agent) signal that the speaker plays
reaches the microphone through a pure delay of 20-60 ms (speaker buffering plus
acoustic flight) followed by an exponentially decaying random impulse response
(room reverberation), plus white sensor noise.  Real speakers add some
non-linear distortion that no linear AEC removes; the ``clip`` option of
:func:`make_echo_path` can emulate an overdriven speaker.

Metrics:

* ERLE (echo return loss enhancement) = 10·log10(E[mic²] / E[out²]) measured
  over *echo-only* audio (agent talking, user silent).  The first
  ``skip_s`` seconds (default 1.0 s) after the far end starts are skipped so
  the adaptive filter can converge; that choice is part of the figure.
* Double-talk correlation = Pearson correlation between the canceller output
  and the clean near-end (user) speech over the span where both talk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..audio.formats import MODEL_RATE, to_int16
from ..audio.wavfile import read_wav

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]


def read_wav_int16(path: str | Path) -> tuple[Int16Array, int]:
    """Read a WAV file as mono int16; returns ``(samples, sample_rate)``."""
    return read_wav(path)


@dataclass(frozen=True)
class EchoPath:
    """A synthetic loudspeaker → microphone path."""

    sample_rate: int
    delay_samples: int
    impulse_response: FloatArray  # starts after the pure delay
    noise_rms: float  # additive white noise, int16 scale
    clip: float | None = None  # speaker saturation level (int16 scale), None = linear

    @property
    def delay_ms(self) -> float:
        return 1000.0 * self.delay_samples / self.sample_rate

    def apply(self, far: npt.ArrayLike, rng: np.random.Generator | None = None) -> FloatArray:
        """Echo as picked up by the microphone (float, int16 scale), same length as ``far``.

        Includes the sensor noise; pass a seeded ``rng`` for reproducibility.
        """
        x = np.asarray(far, dtype=np.float64)
        if self.clip is not None:
            x = self.clip * np.tanh(x / self.clip)
        n = len(x)
        y = np.zeros(n)
        if n > self.delay_samples:
            conv = np.convolve(x[: n - self.delay_samples], self.impulse_response)[: n - self.delay_samples]
            y[self.delay_samples :] = conv
        if self.noise_rms > 0:
            rng = rng if rng is not None else np.random.default_rng(0)
            y += rng.normal(0.0, self.noise_rms, n)
        return y


def make_echo_path(
    sample_rate: int = MODEL_RATE,
    *,
    delay_ms: float | None = None,
    rt60_ms: float = 120.0,
    ir_ms: float = 150.0,
    echo_gain_db: float = -6.0,
    noise_dbfs: float = -65.0,
    clip: float | None = None,
    seed: int = 0,
) -> EchoPath:
    """Random echo path: pure delay (20-60 ms unless given) + decaying noise IR.

    ``rt60_ms``: time for the IR envelope to fall by 60 dB.  ``ir_ms``: IR length
    after the delay (delay + IR must fit the canceller's tail).  ``echo_gain_db``:
    broadband gain of the IR (energy sum), i.e. the echo level relative to the
    played signal; a speaker right next to the mic can be close to 0 dB.
    ``noise_dbfs``: RMS of the additive noise relative to int16 full scale.
    """
    rng = np.random.default_rng(seed)
    if delay_ms is None:
        delay_ms = float(rng.uniform(20.0, 60.0))
    delay = round(delay_ms * sample_rate / 1000.0)
    n_ir = max(1, round(ir_ms * sample_rate / 1000.0))
    t = np.arange(n_ir) / sample_rate
    envelope = 10.0 ** (-3.0 * t / (rt60_ms / 1000.0))  # -60 dB at rt60
    ir = rng.normal(0.0, 1.0, n_ir) * envelope
    ir[0] += 3.0 * float(np.sqrt(np.sum(ir**2)))  # a direct-path peak
    ir *= 10.0 ** (echo_gain_db / 20.0) / np.sqrt(np.sum(ir**2))
    noise_rms = 32768.0 * 10.0 ** (noise_dbfs / 20.0)
    return EchoPath(sample_rate, delay, ir, noise_rms, clip)


@dataclass(frozen=True)
class EchoScenario:
    """A mic/reference pair with ground truth and labelled spans (sample indices)."""

    sample_rate: int
    reference: Int16Array  # what the speaker played (AEC far-end input)
    mic: Int16Array  # echo + near-end + noise, as captured
    near: Int16Array  # clean near-end (user) speech alone
    echo: FloatArray  # echo component alone (incl. noise)
    echo_only: tuple[int, int]  # far end active, near end silent (convergence span included)
    double_talk: tuple[int, int]  # both active
    path: EchoPath


def make_scenario(
    near_speech: Int16Array,
    far_speech: Int16Array,
    sample_rate: int = MODEL_RATE,
    *,
    path: EchoPath | None = None,
    near_gain_db: float = 0.0,
    far_repeats: int = 2,
    seed: int = 0,
) -> EchoScenario:
    """Build a conversation: the agent talks (``far_speech`` played ``far_repeats`` times back
    to back); the user starts talking 0.5 s into the last repetition (double talk) and
    finishes after the agent.

    Timeline with 4 s fixtures and 2 repeats: 0-4.5 s echo only, 4.5-8 s double talk,
    8-8.5 s near end only.
    """
    if path is None:
        path = make_echo_path(sample_rate, seed=seed)
    far = np.concatenate([far_speech] * far_repeats).astype(np.float64)
    n_far = len(far)
    near_start = n_far - len(near_speech) + sample_rate // 2
    total = near_start + len(near_speech)
    reference = np.zeros(total)
    reference[:n_far] = far
    near = np.zeros(total)
    near[near_start:] = near_speech.astype(np.float64) * 10.0 ** (near_gain_db / 20.0)
    echo = path.apply(reference, np.random.default_rng(seed + 1))
    mic = to_int16(near + echo)
    return EchoScenario(
        sample_rate=sample_rate,
        reference=to_int16(reference),
        mic=mic,
        near=to_int16(near),
        echo=echo,
        echo_only=(0, near_start),
        double_talk=(near_start, n_far),
        path=path,
    )


def erle_db(mic: npt.ArrayLike, out: npt.ArrayLike, start: int = 0, stop: int | None = None) -> float:
    """Echo return loss enhancement over ``[start, stop)``: 10·log10(E[mic²]/E[out²]).

    Only meaningful on echo-only audio.  Capped at 100 dB when the output is silent.
    """
    m = np.asarray(mic, dtype=np.float64)[start:stop]
    o = np.asarray(out, dtype=np.float64)[start:stop]
    pm = float(np.mean(m**2))
    po = float(np.mean(o**2))
    if po <= 0.0:
        return 100.0
    return float(min(100.0, 10.0 * np.log10(pm / po)))


def correlation(a: npt.ArrayLike, b: npt.ArrayLike, start: int = 0, stop: int | None = None) -> float:
    """Pearson correlation of two signals over ``[start, stop)`` (zero lag)."""
    x = np.asarray(a, dtype=np.float64)[start:stop]
    y = np.asarray(b, dtype=np.float64)[start:stop]
    x = x - x.mean()
    y = y - y.mean()
    den = float(np.sqrt(np.sum(x**2) * np.sum(y**2)))
    return float(np.sum(x * y) / den) if den > 0 else 0.0


@dataclass(frozen=True)
class EchoScore:
    erle_db: float  # echo-only span, after skip_s of convergence
    double_talk_corr: float  # output vs clean near end, double-talk span
    mic_double_talk_corr: float  # same for the unprocessed mic (baseline)


def score(scenario: EchoScenario, out: npt.ArrayLike, skip_s: float = 1.0) -> EchoScore:
    """ERLE (skipping the first ``skip_s`` seconds of convergence) and double-talk correlation."""
    e0, e1 = scenario.echo_only
    skip = round(skip_s * scenario.sample_rate)
    d0, d1 = scenario.double_talk
    return EchoScore(
        erle_db=erle_db(scenario.mic, out, e0 + skip, e1),
        double_talk_corr=correlation(out, scenario.near, d0, d1),
        mic_double_talk_corr=correlation(scenario.mic, scenario.near, d0, d1),
    )


def synthetic_speech(
    duration_s: float,
    sample_rate: int = MODEL_RATE,
    *,
    f0: float = 120.0,
    seed: int = 0,
    level_dbfs: float = -24.0,
) -> Int16Array:
    """Crude voiced-speech stand-in (harmonics with moving formants, ~4 Hz syllables, pauses).

    Fallback for :mod:`appliance.bench_aec` when the WAV fixtures are not available.
    """
    rng = np.random.default_rng(seed)
    n = round(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = f0 * (1.0 + 0.08 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.28)))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    formant = 500.0 + 400.0 * np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6.28)) ** 2
    x = np.zeros(n)
    for k in range(1, int(4000 // f0)):
        fk = k * pitch
        x += np.sin(k * phase) * np.exp(-(((fk - formant) / 300.0) ** 2)) / k**0.5
        x += 0.5 * np.sin(k * phase) * np.exp(-(((fk - 2.5 * formant) / 400.0) ** 2)) / k**0.5
    syll = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6.28)), 0, None) ** 0.7
    pauses = (np.sin(2 * np.pi * 0.45 * t + rng.uniform(0, 6.28)) > -0.6).astype(float)
    x *= syll * pauses
    x /= max(float(np.sqrt(np.mean(x**2))), 1e-9)
    # unvoiced consonants: high-passed noise bursts between syllables (~0.6 of voiced level)
    fric = np.diff(rng.normal(0.0, 1.0, n + 1))
    burst = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6.28) + np.pi), 0, None) ** 2 * pauses
    x += 0.6 * fric * burst / max(float(np.sqrt(np.mean((fric * burst) ** 2))), 1e-9)
    x *= 32768.0 * 10.0 ** (level_dbfs / 20.0) / max(float(np.sqrt(np.mean(x**2))), 1e-9)
    return to_int16(x)


def segment_erle_db(mic: npt.ArrayLike, out: npt.ArrayLike, segment: int) -> FloatArray:
    """ERLE per consecutive segment of ``segment`` samples (for convergence curves)."""
    m = np.asarray(mic, dtype=np.float64)
    o = np.asarray(out, dtype=np.float64)
    k = min(len(m), len(o)) // segment
    return np.array([erle_db(m, o, i * segment, (i + 1) * segment) for i in range(k)])
