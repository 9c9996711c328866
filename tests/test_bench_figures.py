"""The bench's figure helper: median and spread, interleaved pairs, per-pair ratios; the group list."""

from __future__ import annotations

import importlib

import pytest

from appliance import bench
from appliance.bench.figures import figure, interleave, pair_ratios, spread


def test_spread_is_median_and_interpolated_percentiles() -> None:
    s = spread([5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 6.0, 9.0, 7.0, 8.0, 0.0])  # 0..10, shuffled
    assert s.median == 5.0
    assert s.p10 == pytest.approx(1.0)
    assert s.p90 == pytest.approx(9.0)
    assert s.trials == 11
    between = spread([0.0, 10.0])  # linear interpolation between the two trials
    assert (between.p10, between.median, between.p90) == pytest.approx((1.0, 5.0, 9.0))


def test_spread_ignores_one_outlier_that_a_mean_would_follow() -> None:
    s = spread([1.0] * 9 + [1000.0])
    assert s.median == 1.0
    assert s.p90 > 1.0  # the outlier shows in the spread, not in the value


def test_spread_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        spread([])


def test_figure_from_trials_reports_median_and_spread() -> None:
    fig = figure("x_ms", [3.0, 1.0, 2.0], "ms", digits=2, target="<= 2")
    assert fig == {"name": "x_ms", "value": 2.0, "unit": "ms", "p10": 1.2, "p90": 2.8, "trials": 3,
                   "target": "<= 2"}


def test_figure_from_one_value_has_no_spread() -> None:
    fig = figure("rss_mb", 123.456, "MB", digits=1)
    assert fig == {"name": "rss_mb", "value": 123.5, "unit": "MB"}


def test_interleave_runs_pairs_back_to_back_in_alternating_order() -> None:
    calls: list[str] = []

    def measured() -> float:
        calls.append("A")
        return float(len(calls))

    def baseline() -> float:
        calls.append("B")
        return float(len(calls))

    pairs = interleave(measured, baseline, 4)
    assert "".join(calls) == "ABBAABBA"
    # each pair holds (measured, baseline) whatever order they ran in
    assert pairs == [(1.0, 2.0), (4.0, 3.0), (5.0, 6.0), (8.0, 7.0)]


def test_ratio_is_median_of_per_pair_ratios() -> None:
    # a slow spell doubles both sides of the middle pairs: per pair the ratio stays 1.1
    pairs = [(1.1, 1.0), (2.2, 2.0), (2.2, 2.0), (1.1, 1.0), (2.2, 2.0)]
    assert pair_ratios(pairs) == pytest.approx([1.1] * 5)
    # one pair disturbed on one side only moves the spread, not the value
    disturbed = [(1.1, 1.0)] * 4 + [(5.0, 1.0)]
    fig = figure("r", pair_ratios(disturbed), "ratio")
    assert fig["value"] == pytest.approx(1.1)
    assert fig["p90"] > 1.1
    assert fig["trials"] == 5


def test_each_group_has_its_own_module() -> None:
    assert set(bench.GROUPS) == {"resample", "idle", "wake", "process", "latency", "aec", "leds", "backends"}
    for name in bench.GROUPS:
        assert importlib.import_module(f"appliance.bench.{name}").__doc__


def test_unknown_group_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run(["idle", "nonsense"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "nonsense" in out.err
