#!/usr/bin/env python3
"""Try verifiers and wake rules offline on a frame dump of scripts/wake_accuracy_heldout.py --tuning --dump.

The dump holds, per 80 ms frame, the stock model's score and the 16 x 96 embedding window; this
replays the detector's decision (``WakeWordDetector._step``: the rule must hold CONFIRM frames in a
row, one wake per utterance, 2 s refractory) for each rule on a grid, with each verifier given:

    hit = (stock >= 0.5 and verifier >= veto) or (verifier >= alone and stock >= floor)

(``appliance.triggers.verifier.VerifierRule``; veto > 1 leaves every wake to the verifier) and prints
detection per condition and false wakes in the stream; the grid's rows are sorted by false wakes, then
worst detection. Use it on the tuning (training) voices only: the evaluation voices are measured once,
with the settings chosen here. ``--write`` stores the one ``--rule`` in the verifier file's meta, where
the detector reads it.
Run: python scripts/tune_wake_rule.py DUMP.npz VERIFIER.npz [VERIFIER.npz ...] [--rule VETO ALONE CONFIRM FLOOR]
     [--write]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.triggers.verifier import EmbeddingVerifier  # noqa: E402

REFRACTORY_FRAMES = 25  # 2 s


def wakes(stock: np.ndarray, verifier: np.ndarray, veto: float, alone: float, confirm: int,
          floor: float = 0.0) -> int:
    """How many times the detector's state machine wakes on these frames (vectorized over runs)."""
    hit = ((stock >= 0.5) & (verifier >= veto)) | ((verifier >= alone) & (stock >= floor))
    # Runs of hits: within one, the first frame that is confirm-deep and out of the refractory wakes.
    edges = np.diff(np.concatenate(([0], hit.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # [start, end)
    count, last = 0, -(10**9)
    for a, b in zip(starts, ends, strict=True):
        t = max(a + confirm - 1, last + REFRACTORY_FRAMES)
        if t < b:
            count, last = count + 1, t
    return count


def detection_rate(stock: np.ndarray, verifier: np.ndarray, starts: np.ndarray, veto: float, alone: float,
                   confirm: int, floor: float = 0.0) -> float:
    """The share of trials (each starting at a frame in `starts`) in which the detector wakes."""
    bounds = [*starts[1:], len(stock)]
    return float(np.mean([wakes(stock[a:b], verifier[a:b], veto, alone, confirm, floor) > 0
                          for a, b in zip(starts, bounds, strict=True)]))


def write_rule(path: Path, veto: float, alone: float, confirm: float, floor: float) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    meta["rule"] = {"veto": veto, "alone": alone, "confirm": int(confirm), "floor": floor}
    np.savez_compressed(path, **arrays, meta=np.array(json.dumps(meta)))
    print(f"{path}: rule {meta['rule']}  ({EmbeddingVerifier.load(path).rule})")


def load(path: Path) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            label, part = key.split("|")
            out.setdefault(label, {})[part] = data[key]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dump", type=Path)
    parser.add_argument("verifiers", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--rule", type=float, nargs=4, metavar=("VETO", "ALONE", "CONFIRM", "FLOOR"),
                        help="replay this one rule (e.g. the chosen one on an evaluation dump) instead of the grid")
    parser.add_argument("--write", action="store_true", help="store --rule in the verifier file(s)")
    args = parser.parse_args(argv)
    if args.write:
        if not args.rule:
            parser.error("--write needs --rule")
        for path in args.verifiers:
            write_rule(path, *args.rule)
        return 0
    dump = load(args.dump)
    conditions = [k for k in dump if k != "stream"]
    grid = list(itertools.product((0.0, 0.02, 0.1, 0.3, 1.01), (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.98),
                                  (1, 2, 3, 4), (0.0, 0.005, 0.02, 0.05)))
    if args.rule:
        grid = [(args.rule[0], args.rule[1], int(args.rule[2]), args.rule[3])]
    for path in args.verifiers:
        verifier = EmbeddingVerifier.load(path)
        scored = {k: (d["scores"], verifier.score_batch(d["windows"].astype(np.float32)), d["starts"])
                  for k, d in dump.items()}
        rows = []
        for veto, alone, confirm, floor in grid:
            rates = []
            for cond in conditions:
                rates.append(detection_rate(*scored[cond], veto, alone, confirm, floor))
            stock, ver, _ = scored["stream"]
            rows.append((wakes(stock, ver, veto, alone, confirm, floor), -min(rates), veto, alone, confirm, floor,
                         rates))
        rows.sort(key=lambda r: (r[0] > 0, r[1], r[0]))
        minutes = len(scored["stream"][0]) * 0.08 / 60
        print(f"{path}: false wakes in {minutes:.0f} min | worst rate | veto alone confirm floor | "
              + " | ".join(conditions))
        for fw, _, veto, alone, confirm, floor, rates in rows[: args.top]:
            print(f"  {fw:3d} | {min(rates):.3f} | {veto:.2f} {alone:.2f} {confirm} {floor:.3f} | "
                  + " ".join(f"{r:.3f}" for r in rates))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
