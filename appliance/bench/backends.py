"""`backends` group: playback latency, flush and CPU of both audio backends (`sounddevice` through
ALSA's pulse plugin, `pulse` directly) on one private PulseAudio daemon, each backend in its own
process (audio/backend_bench.py); skipped with a note where PulseAudio is not installed."""

from __future__ import annotations

from .figures import Figure


def bench_backends() -> list[Figure]:
    from ..audio.backend_bench import playback_latency_figures

    return playback_latency_figures()
