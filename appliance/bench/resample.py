"""`resample` group: CPU per 20 ms block of each resampler direction the appliance runs."""

from __future__ import annotations

import time

import numpy as np

from ..audio.formats import MODEL_RATE, WAKE_RATE, samples_for_ms
from ..audio.resample import StreamResampler
from .figures import Figure, figure

_DIRECTIONS = (
    (48_000, WAKE_RATE, "mic_to_wakeword"),
    (48_000, MODEL_RATE, "mic_to_model"),
    (44_100, MODEL_RATE, "mic44k_to_model"),
    (MODEL_RATE, 48_000, "model_to_speaker"),
    (MODEL_RATE, 44_100, "model_to_speaker44k"),
)


def bench_resample(seconds_per_trial: float = 2.0, trials: int = 15) -> list[Figure]:
    rng = np.random.default_rng(0)
    out: list[Figure] = []
    for src, dst, role in _DIRECTIONS:
        block = samples_for_ms(20, src)
        blocks = int(seconds_per_trial * 1000 / 20)
        signal = (rng.standard_normal(blocks * block) * 3000).astype(np.int16).reshape(blocks, block)
        resampler = StreamResampler(src, dst)
        for b in signal[:10]:  # warm-up
            resampler.process(b)
        per_block_us: list[float] = []
        for _ in range(trials):
            started = time.process_time()
            for b in signal:
                resampler.process(b)
            per_block_us.append(1e6 * (time.process_time() - started) / blocks)
        out.append(figure("resample_cpu_us_per_20ms", per_block_us, "us", direction=f"{src}->{dst}", role=role))
    return out
