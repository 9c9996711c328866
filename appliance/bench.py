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


def bench_idle_path(seconds: float = 30.0) -> list[Figure]:
    """The whole idle path per second of audio: capture callback → resample → wake word, against
    openWakeWord's `predict` alone on the same audio."""
    import asyncio

    from .audio.capture import MicStream
    from .audio.devices import DeviceInfo
    from .audio.pipeline import MicPipeline
    from .bench_wake import wakeword_bare_cpu_s_per_audio_s
    from .triggers.wakeword import WakeWordDetector

    rate = 48000
    detector = WakeWordDetector(seed=0)
    mic = MicStream(DeviceInfo(0, "bench", "none", 1, 0, rate), rate, queue_blocks=10)
    loop = asyncio.new_event_loop()  # never run: delivered blocks are dropped with it
    pipeline = MicPipeline(mic, loop, detector, on_wake=lambda d: None, on_stalled=lambda r: None)
    pipeline.close_sink()
    rng = np.random.default_rng(0)
    blocks = int(seconds * 1000 / 20)
    audio = (rng.standard_normal(blocks * mic.block_frames) * 1000).astype(np.int16).reshape(blocks, -1, 1)

    class _Flags:
        input_overflow = False

    for block in audio[:25]:  # warm-up
        mic._callback(block, block.shape[0], None, _Flags())  # type: ignore[arg-type]
        pipeline.process_block(*reversed(mic.blocks.get_nowait()))
    started = time.process_time()
    for block in audio:
        mic._callback(block, block.shape[0], None, _Flags())  # type: ignore[arg-type]
        pipeline.process_block(*reversed(mic.blocks.get_nowait()))
        if len(loop._ready) > 100:  # type: ignore[attr-defined]
            loop._ready.clear()  # type: ignore[attr-defined]
    idle = (time.process_time() - started) / seconds
    loop.close()
    bare = wakeword_bare_cpu_s_per_audio_s(seconds)[0]["value"]
    return [
        figure("idle_cpu_s_per_audio_s", idle, "s/s"),
        figure("wakeword_bare_cpu_s_per_audio_s", bare, "s/s"),
        figure("idle_to_bare_wakeword_ratio", idle / bare, "ratio", target="<= 1.15"),
    ]


def bench_rss() -> list[Figure]:
    from .bench_wake import idle_rss_mb

    return idle_rss_mb()


def _in_fresh_process(module: str) -> Callable[[], Iterable[Figure]]:
    """Figures from `python -m MODULE` (for benches that must set up PortAudio themselves)."""

    def produce() -> Iterable[Figure]:
        import subprocess
        import sys

        done = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    return produce


def bench_aec() -> list[Figure]:
    from .bench_aec import bench_aec as run_aec

    return run_aec()


def producers() -> list[tuple[str, Callable[[], Iterable[Figure]]]]:
    return [
        ("resample", bench_resample),
        ("idle", bench_idle_path),
        ("rss", bench_rss),
        ("process", _in_fresh_process("appliance.bench_process")),
        ("latency", _in_fresh_process("appliance.bench_latency")),
        ("aec", bench_aec),
    ]


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
