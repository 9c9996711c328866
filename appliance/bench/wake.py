"""`wake` group: memory of the wake-word detector alone, and the bare-`predict` CPU runner that the
`idle` group uses as its baseline.

* `wake_idle_rss_mb`: resident memory of a fresh interpreter that has loaded the detector with the
  default model and processed one second of silence (VmRSS from /proc). Variant:
  `..._with_agents_mb` (`agents` and `agents.realtime` imported too, as the app does).
* `wake_idle_rss_microwakeword_mb`: the same with microWakeWord's `micro:okay_nabu` instead (its own
  TFLite C library; LiteRT is never imported). The engines' probes alternate, `RSS_TRIALS` each.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..audio.formats import WAKE_RATE, samples_for_ms
from .figures import Figure, figure

_SRC = Path(__file__).resolve().parents[2]  # so the probe imports this checkout's package
FRAME_SAMPLES = samples_for_ms(80, WAKE_RATE)  # the wake-word engine's step

_RSS_PROBE = """
import sys
{pre}
import numpy as np
from appliance.triggers.wakeword import WakeWordDetector
d = WakeWordDetector({models!r})
d.process(np.zeros({rate}, dtype=np.int16))
{post}
rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS'))
print(rss / 1024)
"""

#: Each engine's model for the per-engine figures (the default model, and microWakeWord's own default).
ENGINE_MODELS: dict[str, tuple[str, ...]] = {"openwakeword": ("hey_jarvis",), "microwakeword": ("micro:okay_nabu",)}
RSS_TRIALS = 3

# name -> (engine, code run before the import, after the first second)
_VARIANTS: dict[str, tuple[str, str, str]] = {
    "wake_idle_rss": ("openwakeword", "", ""),
    "wake_idle_rss_microwakeword": ("microwakeword", "", ""),
    "wake_idle_rss_with_agents": ("openwakeword", "", "import agents, agents.realtime"),
}


def _probe_rss(pre: str, post: str, models: tuple[str, ...] = ENGINE_MODELS["openwakeword"]) -> float:
    code = _RSS_PROBE.format(pre=pre, post=post, rate=WAKE_RATE, models=list(models))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=_SRC, capture_output=True, text=True, check=True, timeout=300
    )
    return float(out.stdout.strip().splitlines()[-1])


def idle_rss_mb(variants: tuple[str, ...] = tuple(_VARIANTS), trials: int = RSS_TRIALS) -> list[Figure]:
    """RSS in MB of fresh subprocesses holding a loaded detector (see module docstring); the variants'
    probes take turns, round after round, so a change in the machine's load hits each alike."""
    values: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(trials):
        for name in variants:
            engine, pre, post = _VARIANTS[name]
            try:
                values[name].append(_probe_rss(pre, post, ENGINE_MODELS[engine]))
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError, IndexError):
                continue  # e.g. the Agents SDK is not installed
    return [figure(f"{name}_mb", got, "MB", digits=1, engine=_VARIANTS[name][0],
                   models=list(ENGINE_MODELS[_VARIANTS[name][0]]))
            for name, got in values.items() if got]


def bare_wakeword_runner(seconds: float, models: tuple[str, ...] = ("hey_jarvis",)) -> Callable[[], float]:
    """A function that runs the wake-word engine's per-frame scoring alone (features and classifiers,
    no wake rule or verifier) on `seconds` of seeded 16 kHz noise (80 ms frames) each call and returns
    the CPU seconds spent per audio second."""
    from ..triggers.wakeword import WakeWordDetector

    detector = WakeWordDetector(list(models))
    n_frames = max(1, int(seconds * WAKE_RATE / FRAME_SAMPLES))
    rng = np.random.default_rng(0)
    frames = (rng.standard_normal(n_frames * FRAME_SAMPLES) * 1000).astype(np.int16).reshape(n_frames, -1)
    for frame in frames[:25]:  # warm-up: first allocations, XNNPACK set-up
        detector.predict_frame(frame)
    audio_s = n_frames * FRAME_SAMPLES / WAKE_RATE

    def run_once() -> float:
        started = time.process_time()
        for frame in frames:
            detector.predict_frame(frame)
        return (time.process_time() - started) / audio_s

    return run_once


def bench_wake() -> list[Figure]:
    return idle_rss_mb()
