"""`idle` group: the whole idle path (capture callback → resample → wake word and its verifier)
against the wake-word engine's per-frame scoring alone, CPU time per second of audio.

The two run interleaved in this process, a few seconds of audio each, pair after pair; the ratio
is the median of the per-pair ratios (see `figures`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from .figures import Figure, figure, interleave, pair_ratios
from .wake import bare_wakeword_runner


def idle_path_runner(seconds: float, rate: int = 48_000) -> Callable[[], float]:
    """A function that pushes `seconds` of seeded noise through the idle path each call and
    returns the CPU seconds spent per audio second."""
    from ..audio.capture import MicStream
    from ..audio.devices import DeviceInfo
    from ..audio.pipeline import MicPipeline
    from ..triggers.wakeword import WakeWordDetector

    detector = WakeWordDetector()
    mic = MicStream(DeviceInfo(0, "bench", "none", 1, 0, rate), rate, queue_blocks=10)
    loop = asyncio.new_event_loop()  # never run: blocks it is handed are dropped with it
    pipeline = MicPipeline(mic, loop, detector, on_wake=lambda d: None, on_stalled=lambda r: None)
    pipeline.close_sink()
    blocks = int(seconds * 1000 / 20)
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(blocks * mic.block_frames) * 1000).astype(np.int16).reshape(blocks, -1, 1)

    class _Flags:
        input_overflow = False

    def feed(chunk: np.ndarray) -> None:
        for block in chunk:
            mic._callback(block, block.shape[0], None, _Flags())  # type: ignore[arg-type]
            captured = mic.blocks.get_nowait()
            pipeline.process_block(captured.samples, captured.captured_at)
        loop._ready.clear()  # type: ignore[attr-defined]

    feed(audio[:25])  # warm-up: first allocations, XNNPACK set-up

    def run_once() -> float:
        started = time.process_time()
        feed(audio)
        return (time.process_time() - started) / seconds

    return run_once


def bench_idle_path(seconds_per_trial: float = 2.0, pairs: int = 100) -> list[Figure]:
    idle = idle_path_runner(seconds_per_trial)
    bare = bare_wakeword_runner(seconds_per_trial)
    results = interleave(idle, bare, pairs)
    how = f"{pairs} interleaved pairs of {seconds_per_trial:g} s of audio each, CPU time"
    return [
        figure("idle_cpu_s_per_audio_s", [a for a, _ in results], "s/s", digits=5, method=how),
        figure("wakeword_bare_cpu_s_per_audio_s", [b for _, b in results], "s/s", digits=5, method=how),
        figure("idle_to_bare_wakeword_ratio", pair_ratios(results), "ratio", target="<= 1.15",
               method=how + "; median of the per-pair ratios"),
    ]
