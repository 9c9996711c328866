"""`appliance bench [GROUP…]`: speed and memory figures, one JSON object per line.

One module per group; every figure is built by `figures.figure` (median with `p10`, `p90` and
`trials` when it has several). No test asserts on a figure's value: targets are read by people,
from this output. `process` and `latency` run in a fresh interpreter because they set up the FIFO
test sound card before PortAudio initialises. `echo_metrics` holds the echo scenarios and scores
the `aec` group (and the AEC tests) use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable

from .figures import Figure

Producer = Callable[[], Iterable[Figure]]


def _resample() -> Iterable[Figure]:
    from .resample import bench_resample

    return bench_resample()


def _idle() -> Iterable[Figure]:
    from .idle import bench_idle_path

    return bench_idle_path()


def _wake() -> Iterable[Figure]:
    from .wake import bench_wake

    return bench_wake()


def _aec() -> Iterable[Figure]:
    from .aec import bench_aec

    return bench_aec()


def _leds() -> Iterable[Figure]:
    from .leds import bench_leds

    return bench_leds()


def _backends() -> Iterable[Figure]:
    from .backends import bench_backends

    return bench_backends()


def _in_fresh_process(module: str) -> Producer:
    """Figures from `python -m MODULE`, one JSON object per stdout line."""

    def produce() -> Iterable[Figure]:
        done = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    return produce


GROUPS: dict[str, Producer] = {
    "resample": _resample,
    "idle": _idle,
    "wake": _wake,
    "process": _in_fresh_process("appliance.bench.process"),
    "latency": _in_fresh_process("appliance.bench.latency"),
    "aec": _aec,
    "leds": _leds,
    "backends": _backends,
}
ALIASES = {"rss": "wake"}  # the group's name before the bench became a package


def run(groups: list[str] | None = None) -> int:
    """Print the figures of `groups` (all when empty); 2 if a group name is unknown."""
    wanted = [ALIASES.get(g, g) for g in groups or []]
    unknown = [g for g in wanted if g not in GROUPS]
    if unknown:
        print(f"unknown bench group(s): {', '.join(unknown)}; choose from {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    for name, produce in GROUPS.items():
        if wanted and name not in wanted:
            continue
        try:
            for fig in produce():
                print(json.dumps(fig), flush=True)
        except Exception as exc:  # one broken group must not hide the others
            print(json.dumps({"name": name, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
    return 0
