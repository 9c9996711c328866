"""The bench's figure helper: median and spread, interleaved pairs, per-pair ratios; the group list."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

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


# -- the memory breakdown of `bench process` ------------------------------------------------------

def _run_python(code: str, cwd: Path) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_meter_counts_each_part_once_and_marks_what_was_loaded(tmp_path: Path) -> None:
    # `outer` imports `inner`, which holds 20 MB: that is inner's, not counted again in outer's.
    (tmp_path / "inner.py").write_text("BLOCK = bytearray(20 * 2**20)\nBLOCK[::4096] = b'x' * len(BLOCK[::4096])\n")
    (tmp_path / "outer.py").write_text("import inner\n")
    (tmp_path / "hooked.py").write_text("")
    out = _run_python(
        "import json, sys\n"
        "sys.path.insert(0, '.')\n"
        "from appliance.bench.startup_memory import ImportMeter\n"
        "seen = []\n"
        "meter = ImportMeter({'outer': ('outer',), 'inner': ('inner',), 'never': ('not_imported_here',)},\n"
        "                    after_import={'hooked': lambda m: seen.append(m.__name__)})\n"
        "sys.meta_path.insert(0, meter)\n"
        "import outer, hooked\n"
        "print(json.dumps({'parts': meter.parts, 'loaded': sorted(meter.loaded), 'hooked': seen,\n"
        "                  'loader': type(outer.__loader__).__name__}))\n",
        tmp_path,
    )
    result = json.loads(out)
    assert set(result["parts"]) == {"outer", "inner", "never"}
    assert result["loaded"] == ["inner", "outer"]
    assert result["parts"]["never"] == 0.0
    assert result["parts"]["inner"] > 15  # the 20 MB block is attributed to the part that holds it
    assert result["parts"]["outer"] < result["parts"]["inner"] / 2
    assert result["hooked"] == ["hooked"]
    assert result["loader"] == "SourceFileLoader"  # the module keeps its own loader


def _trial(stages: dict[str, float], idle: dict[str, float], stopped: dict[str, float]) -> Any:
    from appliance.bench.process import Trial

    trial = Trial(idle_mb=stages["idle"])
    trial.stages = dict(stages)
    for when, parts in (("sdk_loaded", idle), ("stopped", stopped)):
        trial.imports[when] = {p: {"part": p, "mb": mb, "loaded": mb > 0} for p, mb in parts.items()}
    return trial


def test_breakdown_has_every_part_and_stage_and_stages_add_up() -> None:
    from appliance.bench.process import breakdown
    from appliance.bench.startup_memory import PARTS

    stages = {"interpreter": 15.0, "settings": 36.0, "wake_word_loaded": 100.0, "appliance_built": 98.0,
              "devices_opened": 99.0, "idle": 100.0}
    idle = {p: (2.0 if p == "numpy" else 0.0) for p in PARTS}
    stopped = {**idle, "agents_sdk": 20.0}
    figs = breakdown([_trial(stages, idle, stopped), _trial({k: v + 1 for k, v in stages.items()}, idle, stopped)])

    imports = {f["part"]: f for f in figs if f["name"] == "idle_rss_import_mb"}
    assert list(imports) == list(PARTS)
    assert imports["numpy"]["value"] == 2.0 and imports["numpy"]["loaded"] is True
    assert imports["agents_sdk"]["loaded"] is False
    conversation = [f for f in figs if f["name"] == "conversation_rss_import_mb"]
    assert [(f["part"], f["value"]) for f in conversation] == [("agents_sdk", 20.0)]

    staged = [f for f in figs if f["name"] == "idle_rss_stage_mb"]
    assert [f["stage"] for f in staged] == list(stages)  # in the order start-up reached them
    assert all(f["unit"] == "MB" and f["trials"] == 2 for f in staged)
    assert sum(f["value"] for f in staged) == pytest.approx(staged[-1]["rss_mb"])  # the parts make the whole
    assert [f["value"] for f in staged if f["stage"] == "appliance_built"] == [-2.0]  # a stage may give back
