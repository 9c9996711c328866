"""Echo-cancellation benchmark: CPU per 20 ms frame, ERLE, double-talk preservation.

`aec` group; ``python -m appliance.bench.aec`` prints one JSON object per line.

Scenario (see :mod:`appliance.bench.echo_metrics`): the agent sentence
(``tests/fixtures/aec/far_agent.wav`` in a source checkout; an installed wheel does not ship
the fixtures and uses synthetic speech instead, which every figure names in its ``input``
field and note) is played three times back to back through random synthetic
echo paths (20-60 ms delay, 120 ms RT60 decaying IR, -65 dBFS noise, echo at
0 dB = speaker right next to the mic); the user sentence starts 0.5 s into the
last repetition.  Each figure is the median over ``N_PATHS`` echo paths, with its spread.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..audio.aec import EchoCanceller
from ..audio.formats import MODEL_RATE
from .echo_metrics import (
    EchoScenario,
    Int16Array,
    make_echo_path,
    make_scenario,
    read_wav_int16,
    score,
    segment_erle_db,
    synthetic_speech,
)
from .figures import Figure, figure

RATE = MODEL_RATE
N_PATHS = 4
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "aec"


def load_speech() -> tuple[Int16Array, Int16Array, str]:
    """(near user speech, far agent speech, source label) at 24 kHz."""
    near_p, far_p = FIXTURES / "near_user.wav", FIXTURES / "far_agent.wav"
    if near_p.exists() and far_p.exists():
        near, r1 = read_wav_int16(near_p)
        far, r2 = read_wav_int16(far_p)
        if r1 == r2 == RATE:
            return near, far, "espeak-ng fixtures (tests/fixtures/aec)"
    return (
        synthetic_speech(4.0, RATE, f0=210.0, seed=1),
        synthetic_speech(4.0, RATE, f0=110.0, seed=2),
        "synthetic speech (tests/fixtures/aec not found: installed without the source tree)",
    )


def run_aligned(ec: EchoCanceller, sc: EchoScenario) -> np.ndarray:
    """Process a whole scenario and undo the canceller's latency so output aligns with the mic."""
    out = ec.process(sc.mic, sc.reference)
    lat = ec.latency_samples
    aligned = np.zeros(len(sc.mic), dtype=np.int16)
    aligned[: len(out) - lat] = out[lat:]
    return aligned


def convergence_s(sc: EchoScenario, out: np.ndarray, threshold_db: float = 20.0) -> float:
    """Time after which every 250 ms echo-only segment with far-end activity has ERLE >= threshold."""
    seg = RATE // 4
    e0, e1 = sc.echo_only
    erle = segment_erle_db(sc.mic[e0:e1], out[e0:e1], seg)
    ref = sc.reference[e0:e1].astype(np.float64)
    active = np.array([np.sqrt(np.mean(ref[i * seg : (i + 1) * seg] ** 2)) > 100.0 for i in range(len(erle))])
    bad = np.nonzero(active & (erle < threshold_db))[0]
    return float((bad[-1] + 1) * 0.25) if len(bad) else 0.0


def bench_aec(n_paths: int = N_PATHS) -> list[Figure]:
    near, far, source = load_speech()
    erle2, erle1, dt, mic_dt, conv, cpu = [], [], [], [], [], []
    for seed in range(n_paths):
        path = make_echo_path(RATE, seed=seed, echo_gain_db=0.0)
        sc = make_scenario(near, far, RATE, path=path, far_repeats=3, seed=seed)
        ec = EchoCanceller(RATE)
        t0 = time.process_time()
        out = run_aligned(ec, sc)
        cpu.append((time.process_time() - t0) / (len(sc.mic) // ec.frame_size) * 1e6)
        ec.close()
        s2, s1 = score(sc, out, skip_s=2.0), score(sc, out, skip_s=1.0)
        erle2.append(s2.erle_db)
        erle1.append(s1.erle_db)
        dt.append(s2.double_talk_corr)
        mic_dt.append(s2.mic_double_talk_corr)
        conv.append(convergence_s(sc, out))
    note = f"{n_paths} echo paths, 24 kHz, 20 ms frames, 200 ms tail, residual suppression on"

    def row(name: str, vals: list[float], unit: str, extra: str = "") -> Figure:
        return figure(name, vals, unit, input=source, note=note + extra)

    return [
        row("aec_cpu_us_per_20ms", cpu, "us"),
        row("aec_erle_db", erle2, "dB", "; echo-only span, first 2 s (convergence) skipped"),
        row("aec_erle_db_skip1s", erle1, "dB", "; echo-only span, first 1 s skipped"),
        row("aec_convergence_s", conv, "s", "; until every active 250 ms segment has ERLE >= 20 dB"),
        row("aec_double_talk_corr", dt, "", "; output vs clean user speech while both talk"),
        row("mic_double_talk_corr", mic_dt, "", "; unprocessed mic vs clean user speech (baseline)"),
    ]


def main() -> None:
    for r in bench_aec():
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
