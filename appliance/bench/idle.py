"""`idle` group: the whole idle path (capture callback → resample → wake word and its verifier)
against the wake-word engine's per-frame scoring alone, CPU time per second of audio, for each
engine (openWakeWord's `hey_jarvis`, the default, and microWakeWord's `micro:okay_nabu`).

All four run interleaved in this process, a few seconds of audio each, round after round (the order
reversed every other round); each ratio is the median of the per-round ratios (see `figures`). The
openWakeWord figures keep their names; microWakeWord's carry `_microwakeword`, and
`idle_cpu_microwakeword_to_openwakeword_ratio` sets the two idle paths side by side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .figures import Figure, figure
from .wake import ENGINE_MODELS, bare_wakeword_runner


def idle_path_runner(seconds: float, rate: int = 48_000,
                     models: tuple[str, ...] = ENGINE_MODELS["openwakeword"]) -> Callable[[], float]:
    """A function that pushes `seconds` of seeded noise through the idle path each call and
    returns the CPU seconds spent per audio second."""
    from ..audio.capture import MicStream
    from ..audio.devices import DeviceInfo
    from ..audio.pipeline import MicPipeline
    from ..triggers.wakeword import WakeWordDetector

    detector = WakeWordDetector(list(models))
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


def rotate(runners: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """`rounds` results of every runner, run back to back in a round; the order reverses every other
    round so no runner always runs first (or on the cache another left warm)."""
    out: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for i in range(rounds):
        for name in names if i % 2 == 0 else reversed(names):
            out[name].append(runners[name]())
    return out


def _ratios(top: list[float], bottom: list[float]) -> list[float]:
    return [a / b for a, b in zip(top, bottom, strict=True)]


def bench_idle_path(seconds_per_trial: float = 2.0, rounds: int = 100) -> list[Figure]:
    runners: dict[str, Callable[[], float]] = {}
    for engine, models in ENGINE_MODELS.items():
        runners[f"idle/{engine}"] = idle_path_runner(seconds_per_trial, models=models)
        runners[f"bare/{engine}"] = bare_wakeword_runner(seconds_per_trial, models)
    got = rotate(runners, rounds)
    how = f"{rounds} interleaved rounds of {seconds_per_trial:g} s of audio each per runner, CPU time"
    figures: list[Figure] = []
    for engine, models in ENGINE_MODELS.items():
        tag = "" if engine == "openwakeword" else f"_{engine}"
        idle, bare = got[f"idle/{engine}"], got[f"bare/{engine}"]
        extra: dict[str, Any] = {"engine": engine, "models": list(models)}
        target: dict[str, Any] = {"target": "<= 1.15"} if engine == "openwakeword" else {}
        figures += [
            figure(f"idle_cpu_s_per_audio_s{tag}", idle, "s/s", digits=5, method=how, **extra),
            figure(f"wakeword_bare_cpu_s_per_audio_s{tag}", bare, "s/s", digits=5, method=how, **extra),
            # The target is openWakeWord's: the idle path's own cost (capture, resampling) is the same
            # with either engine, so next to microWakeWord's far cheaper scoring the ratio is larger.
            figure(f"idle_to_bare_wakeword_ratio{tag}", _ratios(idle, bare), "ratio",
                   method=how + "; median of the per-round ratios", **extra, **target),
        ]
    figures.append(figure("idle_cpu_microwakeword_to_openwakeword_ratio",
                          _ratios(got["idle/microwakeword"], got["idle/openwakeword"]), "ratio",
                          method=how + "; median of the per-round ratios of the two idle paths"))
    return figures
