"""`backends` group: playback latency of both audio backends, on one private PulseAudio daemon (the paced test
server in appliance/testing/pulse_server.py): `sounddevice` reaches it through ALSA's `pulse`
plugin, `pulse` directly. Each backend runs in its own process (PortAudio reads the ALSA
configuration once, when it initialises).

Figures per backend (`backend` field), one JSON object each:
- `playback_added_latency_ms`: audio queued in the Player → its first sample handed to the stream.
- `output_device_buffer_ms`: the stream's own buffering as its library reports it (PortAudio's
  output latency; PulseAudio's measured stream latency), which comes on top.
- `interrupt_flush_ms`: `Player.flush()` → the next block handed to the stream is silence.
- `playback_cpu_percent`: process CPU while the player plays continuously (one core = 100).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .figures import Figure, figure

RATE = 48000


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.001)


def _tone(ms: int) -> bytes:
    t = np.arange(24000 * ms // 1000) / 24000
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).tobytes()


def measure(backend_name: str, trials: int = 5) -> list[Figure]:
    """In this process, against the server named by the environment (PULSE_SERVER, HOME/.asoundrc)."""
    from ..audio.backends import get_backend
    from ..audio.devices import find_device
    from ..audio.playback import Player

    backend = get_backend(backend_name, **({"latency_ms": 40} if backend_name == "pulse" else {}))
    player = Player(find_device("speaker", "output", backend), RATE, block_ms=10, start_ms=20, backend=backend)
    player.start()
    added: list[float] = []
    flushes: list[float] = []
    try:
        # Warm up: on this server both backends' streams stall for about 1.5 s shortly after they
        # start (the server settling the stream's latency), which is start-up, not playback latency.
        player.enqueue(_tone(100), "warmup", 0)
        player.end_of_audio("warmup", 0)
        _wait(lambda: player.stats.first_audio_at is not None, 10, "the stream to start")
        time.sleep(2.5)
        for _ in range(trials):
            player.stats.first_audio_at = None
            queued_at = time.monotonic()
            player.enqueue(_tone(400), "bench", 0)
            _wait(lambda: player.stats.first_audio_at is not None, 5, "first audio")
            added.append(1000 * (player.stats.first_audio_at - queued_at))  # type: ignore[operator]
            time.sleep(0.15)
            silent_before = player.stats.last_flush_silent_at
            player.flush()
            _wait(lambda before=silent_before: player.stats.last_flush_silent_at != before, 5, "flush")  # type: ignore[misc]
            flushes.append(1000 * (player.stats.last_flush_latency_s or 0.0))
            time.sleep(0.2)
        buffer_ms = 1000 * player.latency
        player.enqueue(_tone(4000), "cpu", 0)
        time.sleep(0.3)
        cpu: list[float] = []
        for _ in range(5):
            cpu0, wall0 = time.process_time(), time.monotonic()
            time.sleep(0.6)
            cpu.append(100 * (time.process_time() - cpu0) / (time.monotonic() - wall0))
    finally:
        player.stop()
    return [
        figure("playback_added_latency_ms", added, "ms", 2, backend=backend_name),
        figure("output_device_buffer_ms", buffer_ms, "ms", 2, backend=backend_name,
               note="as the backend's library reports it; comes on top of the added latency"),
        figure("interrupt_flush_ms", flushes, "ms", 2, backend=backend_name),
        figure("playback_cpu_percent", cpu, "%", 2, backend=backend_name,
               note="whole process while playing; one core = 100"),
    ]


def playback_latency_figures(trials: int = 5) -> list[Figure]:
    """Both backends on one private PulseAudio daemon; [] with a note where PulseAudio is missing."""
    from ..testing.pulse_server import PulseSoundServer, available

    if not available():
        return [{"name": "playback_added_latency_ms", "value": None, "unit": "ms",
                 "note": "skipped: PulseAudio (pulseaudio, pulseaudio-utils) is not installed"}]
    server = PulseSoundServer(Path(tempfile.mkdtemp(prefix="appliance-bench-pulse-"))).start()
    figures: list[Figure] = []
    try:
        for backend in ("sounddevice", "pulse"):
            env = {**os.environ, **server.env}
            proc = subprocess.run([sys.executable, "-m", "appliance.bench.backends", backend, str(trials)],
                                  env=env, capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"{backend} playback bench failed: {proc.stderr.strip()[-400:]}")
            figures += [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    finally:
        server.stop()
    return figures


def bench_backends() -> list[Figure]:
    return playback_latency_figures()


def main(argv: list[str]) -> int:
    if argv:
        for figure in measure(argv[0], int(argv[1]) if len(argv) > 1 else 5):
            print(json.dumps(figure), flush=True)
    else:
        for figure in playback_latency_figures():
            print(json.dumps(figure), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
