"""microWakeWord as the second wake-word engine (``micro:NAME``): the detector, its twin, thresholds,
mixed lists, the ``appliance wakeword`` command, settings, ``appliance check``'s sample and the
played-audio filter. Real pymicro-wakeword models on the committed espeak-ng clips
(tests/fixtures/okay_nabu/, made by scripts/make_wake_fixtures.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.triggers.self_wake import PlayedWakeFilter, played_wake_filter
from appliance.triggers.wake_models import WakeWordModelError
from appliance.triggers.wake_scan import main_wakeword, read_wav_16k, scan_file, wake_setup
from appliance.triggers.wakeword import FRAME_SAMPLES, WakeWordDetector
from tests.audio_compare import FIXTURES, read_wav

NABU = FIXTURES / "okay_nabu"
NABU_CLIP = NABU / "en-us_160.wav"  # scores 0.99 with micro:okay_nabu (its cutoff is 0.85)
NABU_WEAK = NABU / "en-us_f2_160.wav"  # scores about 0.53: below the cutoff
NOT_NABU = sorted((FIXTURES / "wake" / "neg").glob("*.wav")) + [FIXTURES / "hey_jarvis_what_time.wav"]
SAYS_NABU = NABU / "reply" / "reply_says_okay_nabu_24k.wav"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nabu() -> WakeWordDetector:
    return WakeWordDetector(["micro:okay_nabu"])


def test_a_micro_model_wakes_on_okay_nabu_once_with_its_own_cutoff(nabu: WakeWordDetector) -> None:
    assert nabu.models == ("micro:okay_nabu",)
    assert nabu.engines == {"micro:okay_nabu": "microwakeword"}
    assert nabu.thresholds == {"micro:okay_nabu": 0.85}  # from okay_nabu.json, not openWakeWord's 0.5
    assert nabu.verified == ()
    scan = scan_file(NABU_CLIP, nabu)
    assert [d.model for d in scan.detections] == ["micro:okay_nabu"]
    assert scan.detections[0].score >= 0.85 and scan.detections[0].verifier_score is None
    assert not scan_file(NABU_WEAK, nabu).detections


@pytest.mark.parametrize("clip", NOT_NABU, ids=lambda p: p.name)
def test_other_speech_does_not_wake_it(nabu: WakeWordDetector, clip: Path) -> None:
    assert not scan_file(clip, nabu).detections


def test_refractory_and_rearm_hold_for_micro_models() -> None:
    clip = read_wav_16k(NABU_CLIP)
    gap = lambda s: np.zeros(int(s * 16000), np.int16)  # noqa: E731
    close = WakeWordDetector(["micro:okay_nabu"], refractory_s=5.0)
    assert len(close.process(np.concatenate([gap(1), clip, gap(1), clip, gap(1)]))) == 1
    apart = WakeWordDetector(["micro:okay_nabu"], refractory_s=0.5)
    assert len(apart.process(np.concatenate([gap(1), clip, gap(1), clip, gap(1)]))) == 2


def test_a_threshold_named_for_the_model_overrides_its_cutoff() -> None:
    strict = WakeWordDetector(["micro:okay_nabu"], {"micro:okay_nabu": 0.995})
    assert strict.thresholds == {"micro:okay_nabu": 0.995}
    assert not scan_file(NABU_CLIP, strict).detections
    lenient = WakeWordDetector(["micro:okay_nabu"], 0.5)  # one value for all: as given
    assert scan_file(NABU_WEAK, lenient).detections


def test_the_twin_has_its_own_stream_state(nabu: WakeWordDetector) -> None:
    """The twin's interpreters are its own: feeding it between two halves of a clip fed to the
    detector changes neither's scores."""
    clip = np.concatenate([np.zeros(16000, np.int16), read_wav_16k(NABU_CLIP), np.zeros(16000, np.int16)])
    half = (clip.size // 2) // FRAME_SAMPLES * FRAME_SAMPLES
    alone = scan_file(NABU_CLIP, nabu).scores
    nabu.reset()
    twin = nabu.twin()
    first = nabu.process(clip[:half])
    twin_found = twin.process(clip)
    second = nabu.process(clip[half:])
    assert [d.model for d in first + second] == ["micro:okay_nabu"]
    assert [d.model for d in twin_found] == ["micro:okay_nabu"]
    assert twin_found[0].at_sample == (first + second)[0].at_sample
    assert scan_file(NABU_CLIP, nabu.twin()).scores == alone


def test_a_mixed_list_runs_both_engines() -> None:
    both = WakeWordDetector(["hey_jarvis", "micro:okay_nabu"])
    assert both.engines == {"hey_jarvis": "openwakeword", "micro:okay_nabu": "microwakeword"}
    assert both.thresholds == {"hey_jarvis": 0.5, "micro:okay_nabu": 0.85}
    assert both.verified == ("hey_jarvis",)  # the verifier stays openWakeWord's hey_jarvis
    assert [d.model for d in scan_file(NABU_CLIP, both).detections] == ["micro:okay_nabu"]
    assert [d.model for d in scan_file(FIXTURES / "hey_jarvis_what_time.wav", both).detections] == ["hey_jarvis"]
    assert scan_file(NABU_CLIP, both.twin()).scores == scan_file(NABU_CLIP, both).scores
    assert both.embedding_window().shape == (16, 96)


def test_a_micro_only_detector_has_no_embeddings(nabu: WakeWordDetector) -> None:
    with pytest.raises(ValueError, match="no speech embeddings"):
        nabu.embedding_window()


def test_a_manifest_path_loads_and_bad_ones_are_named(tmp_path: Path) -> None:
    from appliance.triggers.wake_models import micro_models_dir

    bundled = micro_models_dir()
    manifest = json.loads((bundled / "okay_nabu.json").read_text())
    manifest["model"] = str(bundled / "okay_nabu.tflite")
    manifest["micro"]["probability_cutoff"] = 0.7
    custom = tmp_path / "my_nabu.json"
    custom.write_text(json.dumps(manifest))
    det = WakeWordDetector([f"micro:{custom}"])
    assert det.thresholds == {"micro:my_nabu": 0.7}
    assert scan_file(NABU_CLIP, det).woke("micro:my_nabu")
    with pytest.raises(WakeWordModelError, match="micro:okay_nabu, micro:hey_jarvis"):
        WakeWordDetector(["micro:okay_nabo"])
    with pytest.raises(WakeWordModelError, match="not found"):
        WakeWordDetector([f"micro:{tmp_path / 'missing.json'}"])
    broken = tmp_path / "broken.json"
    broken.write_text('{"model": "x.tflite"}')
    with pytest.raises(WakeWordModelError, match="not a microWakeWord manifest"):
        WakeWordDetector([f"micro:{broken}"])


def test_the_wakeword_command_scans_with_a_micro_model(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main_wakeword(["-m", "micro:okay_nabu", str(NABU_CLIP), str(FIXTURES / "negative.wav")])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0
    assert [line["detected"] for line in lines] == [{"micro:okay_nabu": True}, {"micro:okay_nabu": False}]
    assert lines[0]["scores"]["micro:okay_nabu"] > 0.85 and "verifier_scores" not in lines[0]
    assert main_wakeword(["-m", "micro:nabu", str(NABU_CLIP)]) == 2
    assert "micro:okay_nabu" in capsys.readouterr().err


def test_the_wakeword_command_in_a_process() -> None:
    done = subprocess.run([sys.executable, "-m", "appliance", "wakeword", "-m", "micro:okay_nabu", str(NABU_CLIP)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["detected"] == {"micro:okay_nabu": True}


def _config(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "appliance", "config"], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=120)


def test_settings_accept_micro_models_and_config_says_the_verifier_is_off() -> None:
    done = _config(APPLIANCE_WAKE__MODELS="hey_jarvis, micro:okay_nabu",
                   APPLIANCE_WAKE__THRESHOLDS="micro:okay_nabu:0.9")
    assert done.returncode == 0, done.stderr
    setup = json.loads(done.stdout)["wake_setup"]
    assert setup["hey_jarvis"] == {"engine": "openwakeword", "threshold": 0.5, "verifier": "on"}
    assert setup["micro:okay_nabu"]["engine"] == "microwakeword"
    assert setup["micro:okay_nabu"]["threshold"] == 0.9
    assert setup["micro:okay_nabu"]["verifier"].startswith("off")


def test_settings_refuse_an_unknown_micro_model_naming_the_variable() -> None:
    done = _config(APPLIANCE_WAKE__MODELS="micro:okay_nabo")
    assert done.returncode == 2
    assert "APPLIANCE_WAKE__MODELS" in done.stderr
    for name in ("micro:okay_nabu", "micro:hey_jarvis", "micro:alexa", "micro:hey_mycroft"):
        assert name in done.stderr


def test_threshold_for_leaves_micro_models_their_cutoff() -> None:
    from appliance.settings import WakeSettings

    wake = WakeSettings(models="hey_jarvis,micro:okay_nabu,micro:alexa", threshold=0.6,
                        thresholds="micro:alexa:0.8")
    assert wake.threshold_for() == {"hey_jarvis": 0.6, "micro:alexa": 0.8}
    det = WakeWordDetector(wake.models, wake.threshold_for())
    assert det.thresholds == {"hey_jarvis": 0.6, "micro:okay_nabu": 0.85, "micro:alexa": 0.8}
    assert wake_setup(wake.models, wake.threshold_for(), True)["micro:okay_nabu"]["threshold_from"] == "model manifest"


def test_check_plays_each_model_the_sample_its_engine_wakes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.selftest import _wakeword
    from appliance.settings import Settings

    monkeypatch.setenv("APPLIANCE_WAKE__MODELS", "micro:okay_nabu")
    results = _wakeword(Settings())
    assert [(r.ok, r.detail.split(":")[0] + ":" + r.detail.split(":")[1]) for r in results] == [
        (True, "micro:okay_nabu")]
    assert "'okay nabu' sample scored 0.99" in results[0].detail


def test_the_played_audio_filter_scores_with_a_micro_twin(nabu: WakeWordDetector) -> None:
    """What the speaker played is scored by the same engine: an answer that says "okay nabu" explains
    a detection just after the phrase; an ordinary answer explains nothing."""
    filter_ = played_wake_filter(nabu)
    assert isinstance(filter_, PlayedWakeFilter)
    rate = 48000
    reply = read_wav(SAYS_NABU, rate)
    # Where the phrase ends in the answer, found by scanning the answer with the detector itself.
    said_at = scan_file(SAYS_NABU, nabu).detections[0].at_s - 1.0  # scan_file pads 1 s of silence
    tap = filter_.listen_to(rate)
    audio = np.concatenate([reply, np.zeros(rate, np.int16)])
    for i in range(0, audio.size, rate // 50):
        block = audio[i : i + rate // 50]
        tap.write(block, bool(np.any(block)), 100.0 + i / rate)
    filter_.update()
    assert filter_.explains(100.0 + said_at + 0.1, stock_fired=True)
    assert not filter_.explains(100.0 + 1.0, stock_fired=True)  # "I'm your kitchen helper"

    ordinary = played_wake_filter(nabu)
    assert ordinary is not None
    tap = ordinary.listen_to(rate)
    speech = np.tile(read_wav(FIXTURES / "reply_24k.wav", rate), 3)
    for i in range(0, speech.size, rate // 50):
        tap.write(speech[i : i + rate // 50], True, 100.0 + i / rate)
    ordinary.update()
    assert ordinary.played_s > 5
    assert not any(ordinary.explains(100.0 + t, stock_fired=True) for t in np.arange(0.0, 6.0, 0.1))
