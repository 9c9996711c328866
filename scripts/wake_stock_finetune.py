#!/usr/bin/env python3
"""openWakeWord's own hey_jarvis model, opened up: replay it stage by stage, and fine-tune it from its weights.

``hey_jarvis.tflite`` (pyopen-wakeword) is a two-stage cascade on the 16 x 96 embedding window: stage 1
(1536 -> 128 -> 128 -> 1, layer norms, ReLU) scores every frame; where it reaches 0.5, stage 2 (the same
shape, 64 wide) replaces its score: a verifier of the model's own. This reads both stages' weights from
the tflite file into numpy (reproducing LiteRT's scores to 1e-5), replays a frame dump of
scripts/wake_accuracy_heldout.py --dump with the stock rule (score >= 0.5, one frame, 2 s refractory) for
the cascade and for stage 1 alone, and with ``--finetune EXAMPLES`` fine-tunes both stages from the stock
weights on the examples scripts/train_wake_verifier.py --cache keeps (``train_x``, ``train_y``), kept
near the stock weights by an L2 penalty (L2-SP), and replays the result.

Needs: pip install -e .[wake-eval]; torch for --finetune (CPU wheel, not a dependency of this project).
Run: python scripts/wake_stock_finetune.py DUMP.npz [DUMP.npz ...] [--finetune EXAMPLES.npz]
     [--l2sp 1e-3] [--epochs 2] [--lr 3e-4] [--pos-weight 3] [--out FILE.npz] [--gate VERIFIER.npz]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from tune_wake_rule import detection_rate, load, wakes  # noqa: E402

from appliance.triggers.verifier import EmbeddingVerifier  # noqa: E402
from appliance.triggers.wake_models import resolve_model  # noqa: E402

Stage = dict[str, np.ndarray]
# Tensor indices of hey_jarvis.tflite (v0.1): W1, b1, gamma1, beta1, W2, b2, gamma2, beta2, W3, b3.
STAGE_TENSORS = {1: (22, 5, 16, 17, 23, 18, 19, 20, 24, 21), 2: (6, 7, 8, 9, 10, 11, 12, 13, 14, 15)}
PARAMS = ("W1", "b1", "g1", "be1", "W2", "b2", "g2", "be2", "W3", "b3")


def stock_stages() -> tuple[Stage, Stage]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(resolve_model("hey_jarvis")))
    interpreter.allocate_tensors()
    s1, s2 = ({p: np.array(interpreter.get_tensor(i)) for p, i in zip(PARAMS, STAGE_TENSORS[n], strict=True)}
              for n in (1, 2))
    return s1, s2


def _layer_norm(h: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = h.mean(-1, keepdims=True)
    return (h - mean) / np.sqrt(((h - mean) ** 2).mean(-1, keepdims=True) + 1e-5) * gamma + beta


def stage_score(w: Stage, x: np.ndarray) -> np.ndarray:
    h = np.maximum(_layer_norm(x @ w["W1"].T + w["b1"], w["g1"], w["be1"]), 0)
    h = np.maximum(_layer_norm(h @ w["W2"].T + w["b2"], w["g2"], w["be2"]), 0)
    return 1 / (1 + np.exp(-(h @ w["W3"].T + w["b3"])[..., 0]))


def cascade_score(s1: Stage, s2: Stage, x: np.ndarray) -> np.ndarray:
    first = stage_score(s1, x)
    return np.where(first >= 0.5, stage_score(s2, x), first)


def replay(dump: dict[str, dict[str, np.ndarray]], score: Callable[[np.ndarray], np.ndarray],
           gate: Callable[[np.ndarray], np.ndarray] | None = None, veto: float = 0.0,
           confirm: int = 1) -> tuple[dict[str, float], int]:
    """Detection per condition and false wakes in the stream for frame scores `score(x)`: the stock rule
    (>= 0.5, 2 s refractory), and with `gate` only where the gate's score reaches `veto`, for `confirm`
    frames in a row (``tune_wake_rule.wakes``)."""
    rates: dict[str, float] = {}
    false_wakes = 0
    for cond, d in dump.items():
        x = d["windows"].reshape(len(d["windows"]), -1)
        s, g = score(x), (gate(x) if gate is not None else np.ones(len(x)))
        if cond == "stream":
            false_wakes = wakes(s, g, veto, 2.0, confirm)
            continue
        rates[cond] = detection_rate(s, g, d["starts"], veto, 2.0, confirm)
    return rates, false_wakes


def finetune(s: Stage, examples: Path, l2sp: float, epochs: int, lr: float, pos_weight: float, seed: int) -> Stage:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    with np.load(examples) as data:
        x, y = torch.from_numpy(data["train_x"]), torch.from_numpy(data["train_y"])
    start = {k: torch.tensor(v) for k, v in s.items()}
    p = {k: torch.nn.Parameter(v.clone()) for k, v in start.items()}
    opt = torch.optim.Adam(p.values(), lr=lr)
    width = s["b1"].shape[0]
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 2048):
            idx = order[i : i + 2048]
            h = F.layer_norm(x[idx] @ p["W1"].T + p["b1"], (width,), p["g1"], p["be1"], 1e-5).relu()
            h = F.layer_norm(h @ p["W2"].T + p["b2"], (width,), p["g2"], p["be2"], 1e-5).relu()
            logit = (h @ p["W3"].T + p["b3"])[:, 0]
            weight = 1 + (pos_weight - 1) * (y[idx] > 0.5).float()
            loss = F.binary_cross_entropy_with_logits(logit, y[idx], weight=weight)
            loss = loss + l2sp * sum(((p[k] - start[k]) ** 2).sum() for k in p)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().numpy() for k, v in p.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dumps", type=Path, nargs="+")
    parser.add_argument("--finetune", type=Path, metavar="EXAMPLES.npz")
    parser.add_argument("--l2sp", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--pos-weight", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="save the fine-tuned stages here")
    parser.add_argument("--gate", type=Path, metavar="VERIFIER.npz",
                        help="also replay the fine-tuned cascade gated by this verifier (veto x confirm grid)")
    args = parser.parse_args(argv)

    s1, s2 = stock_stages()
    variants = {"stock cascade": (s1, s2), "stage 1 alone": (s1, None)}
    if args.finetune:
        f1, f2 = (finetune(s, args.finetune, args.l2sp, args.epochs, args.lr, args.pos_weight, args.seed)
                  for s in (s1, s2))
        variants[f"fine-tuned (L2-SP {args.l2sp:g}, {args.epochs} epochs)"] = (f1, f2)
        if args.out:
            np.savez(args.out, **{f"s1_{k}": v for k, v in f1.items()}, **{f"s2_{k}": v for k, v in f2.items()})
    for path in args.dumps:
        dump = load(path)
        windows = dump["clean"]["windows"]
        error = np.abs(cascade_score(s1, s2, windows.reshape(len(windows), -1)) - dump["clean"]["scores"]).max()
        assert error < 1e-4, f"the numpy cascade does not reproduce LiteRT's scores (max error {error:.2g})"
        print(f"{path.name}: false wakes | worst | " + " | ".join(k for k in dump if k != "stream"))
        for name, (a, b) in variants.items():
            fn = (lambda x, a=a: stage_score(a, x)) if b is None else (lambda x, a=a, b=b: cascade_score(a, b, x))
            rates, false_wakes = replay(dump, fn)
            print(f"  {name:<34} {false_wakes:4d} | {min(rates.values()):.3f} | "
                  + " ".join(f"{r:.3f}" for r in rates.values()))
        if args.gate and args.finetune:
            verifier = EmbeddingVerifier.load(args.gate)
            f1, f2 = variants[list(variants)[-1]]
            assert f2 is not None
            for veto, confirm in itertools.product((0.1, 0.5, 0.9), (1, 2, 3)):
                rates, false_wakes = replay(
                    dump, lambda x, f1=f1, f2=f2: cascade_score(f1, f2, x),
                    lambda x, v=verifier: v.score_batch(x.reshape(-1, 16, 96).astype(np.float32)), veto, confirm)
                print(f"  {f'fine-tuned, gate {veto:g}, {confirm} frames':<34} {false_wakes:4d} | "
                      f"{min(rates.values()):.3f} | " + " ".join(f"{r:.3f}" for r in rates.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
