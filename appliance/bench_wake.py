"""Wake-word benchmarks: idle memory and CPU per audio second.

``python -m appliance.bench_wake`` prints one JSON object per line, each ``{"name", "value", "unit"}``.

* ``idle_rss_mb``: resident memory of a fresh interpreter that has loaded the detector with the
  default model and processed one second of silence (VmRSS from /proc). Variants:
  ``..._with_agents`` (``agents`` and ``agents.realtime`` imported too, as the app does) and
  ``..._plain_openwakeword`` (``import openwakeword`` the ordinary way, for comparison).
* ``wakeword_bare_cpu_s_per_audio_s``: openWakeWord ``predict`` alone on 80 ms frames of seeded
  noise, CPU time (``time.process_time``) per second of audio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["idle_rss_mb", "main", "wakeword_bare_cpu_s_per_audio_s"]

Metric = dict[str, Any]
_SRC = Path(__file__).resolve().parents[1]  # so the probe imports this checkout's package

_RSS_PROBE = """
import sys
{pre}
import numpy as np
from appliance.triggers.wakeword import WakeWordDetector
d = WakeWordDetector(seed=0)
d.process(np.zeros(16000, dtype=np.int16))
{post}
rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS'))
print(rss / 1024)
"""

_VARIANTS: dict[str, tuple[str, str]] = {
    "wake_idle_rss": ("", ""),
    "wake_idle_rss_with_agents": ("", "import agents, agents.realtime"),
    "wake_idle_rss_plain_openwakeword": ("import openwakeword", ""),
}


def _probe_rss(pre: str, post: str) -> float:
    code = _RSS_PROBE.format(pre=pre, post=post)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=_SRC, capture_output=True, text=True, check=True, timeout=300
    )
    return float(out.stdout.strip().splitlines()[-1])


def idle_rss_mb(variants: tuple[str, ...] = tuple(_VARIANTS)) -> list[Metric]:
    """RSS in MB of fresh subprocesses holding a loaded detector (see module docstring)."""
    results: list[Metric] = []
    for name in variants:
        pre, post = _VARIANTS[name]
        try:
            value = round(_probe_rss(pre, post), 1)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError, IndexError):
            continue  # e.g. the Agents SDK is not installed
        results.append({"name": f"{name}_mb", "value": value, "unit": "MB"})
    return results


def wakeword_bare_cpu_s_per_audio_s(
    seconds: float = 30.0, models: tuple[str, ...] = ("hey_jarvis",)
) -> list[Metric]:
    """CPU seconds that openWakeWord ``predict`` needs per second of 16 kHz audio (80 ms frames)."""
    from appliance.audio.formats import WAKE_RATE
    from appliance.triggers.wakeword import FRAME_SAMPLES, WakeWordDetector

    det = WakeWordDetector(list(models), seed=0)
    rng = np.random.default_rng(0)
    n_frames = int(seconds * WAKE_RATE / FRAME_SAMPLES)
    audio = (rng.standard_normal(n_frames * FRAME_SAMPLES) * 1000).astype(np.int16)
    frames = audio.reshape(n_frames, FRAME_SAMPLES)
    for frame in frames[:25]:  # warm-up: first allocations, XNNPACK setup
        det.predict_frame(frame)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for frame in frames:
        det.predict_frame(frame)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    audio_s = n_frames * FRAME_SAMPLES / WAKE_RATE
    tag = "+".join(models)
    return [
        {"name": "wakeword_bare_cpu_s_per_audio_s", "value": round(cpu / audio_s, 5), "unit": "s/s",
         "models": tag},
        {"name": "wakeword_bare_wall_ms_per_frame", "value": round(1000 * wall / n_frames, 3), "unit": "ms",
         "models": tag},
    ]


def main() -> int:
    for metric in idle_rss_mb() + wakeword_bare_cpu_s_per_audio_s():
        print(json.dumps(metric), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
