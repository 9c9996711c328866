"""The one shape every bench figure has, and the statistics behind it.

A figure is one JSON object: `name`, `value`, `unit`, then extras. A figure measured over several
trials reports the median as `value` with its spread (`p10`, `p90`, `trials`), so a reader can tell
a real change from noise. A ratio against a baseline is measured from interleaved pairs (the
measured run and the baseline run back to back, in alternating order), and its value is the median
of the per-pair ratios: load that comes and goes on a shared machine then hits both sides of a pair
alike instead of one whole side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Figure = dict[str, Any]


@dataclass(frozen=True)
class Spread:
    """Median and 10th/90th percentiles (linear interpolation) of a set of trials."""

    median: float
    p10: float
    p90: float
    trials: int


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no trials to summarise")
    import numpy as np  # here, not at the top: the memory bench's probe must not import numpy early

    data = np.asarray(values, dtype=np.float64)
    p10, median, p90 = np.percentile(data, [10, 50, 90])
    return Spread(float(median), float(p10), float(p90), len(data))


def figure(name: str, value: float | Sequence[float], unit: str, digits: int = 3, **extra: Any) -> Figure:
    """One figure. A single `value` is printed as it is; a sequence of trials is printed as its
    median with `p10`, `p90` and `trials`."""
    if isinstance(value, (int, float)):
        return {"name": name, "value": round(float(value), digits), "unit": unit, **extra}
    s = spread(value)
    return {"name": name, "value": round(s.median, digits), "unit": unit, "p10": round(s.p10, digits),
            "p90": round(s.p90, digits), "trials": s.trials, **extra}


def interleave(measured: Callable[[], float], baseline: Callable[[], float],
               pairs: int) -> list[tuple[float, float]]:
    """`pairs` (measured, baseline) results, each pair run back to back; the order inside a pair
    alternates (A B, B A, A B…) so neither side always runs on a warmer cache."""
    out: list[tuple[float, float]] = []
    for i in range(pairs):
        if i % 2 == 0:
            a = measured()
            b = baseline()
        else:
            b = baseline()
            a = measured()
        out.append((a, b))
    return out


def pair_ratios(pairs: Sequence[tuple[float, float]]) -> list[float]:
    """measured / baseline of each pair (the figure's value is their median, not a ratio of medians)."""
    return [a / b for a, b in pairs]
