"""`appliance bench`: figures, one JSON object per line (`name`, `value`, `unit`, extras).

Each figure comes from a function here or in a sibling bench module; none is asserted on in the
tests (targets are read by people, from this output).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .audio.resample import StreamResampler

Figure = dict[str, Any]


def figure(name: str, value: float, unit: str, **extra: Any) -> Figure:
    return {"name": name, "value": round(float(value), 3), "unit": unit, **extra}


def bench_resample(seconds: float = 20.0) -> list[Figure]:
    """CPU per 20 ms block of each resampler direction the appliance runs."""
    rng = np.random.default_rng(0)
    out: list[Figure] = []
    for src, dst, role in ((48000, 16000, "mic_to_wakeword"), (48000, 24000, "mic_to_model"),
                           (44100, 24000, "mic44k_to_model"), (24000, 48000, "model_to_speaker"),
                           (24000, 44100, "model_to_speaker44k")):
        block = src * 20 // 1000
        signal = (rng.standard_normal(int(src * seconds)) * 3000).astype(np.int16)
        r = StreamResampler(src, dst)
        blocks = signal.size // block
        started = time.process_time()
        for i in range(blocks):
            r.process(signal[i * block : (i + 1) * block])
        spent = time.process_time() - started
        out.append(figure("resample_cpu_us_per_20ms", 1e6 * spent / blocks, "us", direction=f"{src}->{dst}",
                          role=role))
    return out


def producers() -> list[tuple[str, Callable[[], Iterable[Figure]]]]:
    items: list[tuple[str, Callable[[], Iterable[Figure]]]] = [("resample", bench_resample)]
    return items


def run(only: list[str] | None = None) -> int:
    for name, produce in producers():
        if only and name not in only:
            continue
        try:
            for fig in produce():
                print(json.dumps(fig), flush=True)
        except Exception as exc:  # one broken figure must not hide the others
            print(json.dumps({"name": name, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
