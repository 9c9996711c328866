"""`appliance bench idle` / `wake`: each wake-word engine's idle CPU and RSS side by side, interleaved.
Structure only: no test asserts on a figure's value."""

from __future__ import annotations

from appliance.bench.idle import bench_idle_path, rotate
from appliance.bench.wake import ENGINE_MODELS, idle_rss_mb


def test_rotate_runs_every_runner_each_round_reversing_the_order() -> None:
    calls: list[str] = []

    def runner(name: str):  # type: ignore[no-untyped-def]
        def run() -> float:
            calls.append(name)
            return float(len(calls))
        return run

    got = rotate({"a": runner("a"), "b": runner("b"), "c": runner("c")}, 3)
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert got == {"a": [1.0, 6.0, 7.0], "b": [2.0, 5.0, 8.0], "c": [3.0, 4.0, 9.0]}


def test_idle_figures_come_for_each_engine_from_the_same_rounds() -> None:
    figures = {f["name"]: f for f in bench_idle_path(seconds_per_trial=0.2, rounds=2)}
    assert set(figures) == {
        "idle_cpu_s_per_audio_s", "wakeword_bare_cpu_s_per_audio_s", "idle_to_bare_wakeword_ratio",
        "idle_cpu_s_per_audio_s_microwakeword", "wakeword_bare_cpu_s_per_audio_s_microwakeword",
        "idle_to_bare_wakeword_ratio_microwakeword", "idle_cpu_microwakeword_to_openwakeword_ratio",
    }
    assert all(f["trials"] == 2 and f["value"] > 0 for f in figures.values())
    assert figures["idle_cpu_s_per_audio_s"]["engine"] == "openwakeword"
    assert figures["idle_cpu_s_per_audio_s_microwakeword"]["models"] == ["micro:okay_nabu"]
    assert figures["idle_to_bare_wakeword_ratio"]["target"] == "<= 1.15"
    assert "target" not in figures["idle_to_bare_wakeword_ratio_microwakeword"]


def test_idle_rss_is_measured_for_each_engine() -> None:
    figures = idle_rss_mb(("wake_idle_rss", "wake_idle_rss_microwakeword"), trials=1)
    assert [(f["name"], f["engine"], f["models"]) for f in figures] == [
        ("wake_idle_rss_mb", "openwakeword", list(ENGINE_MODELS["openwakeword"])),
        ("wake_idle_rss_microwakeword_mb", "microwakeword", list(ENGINE_MODELS["microwakeword"])),
    ]
    assert all(f["unit"] == "MB" and f["value"] > 10 for f in figures)
