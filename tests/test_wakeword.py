"""Wake-word detector: detections, refractory, block sizes, model errors, light imports.

Fixtures: tests/fixtures/wake/ (made by scripts/make_wake_fixtures.sh).
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.audio.formats import WAKE_RATE
from appliance.triggers.wake_models import BUNDLED_MODELS, WakeWordModelError, resolve_model
from appliance.triggers.wake_scan import main_wakeword, read_wav_16k, score_file
from appliance.triggers.wakeword import FRAME_SAMPLES, Detection, WakeWordDetector

FIXTURES = Path(__file__).parent / "fixtures" / "wake"
POSITIVE = FIXTURES / "pos" / "en-us_160_comma.wav"
POSITIVE_2 = FIXTURES / "pos" / "en-gb-x-rp_f2_160_plain.wav"
NEGATIVES = sorted((FIXTURES / "neg").glob("*.wav"))
REPO = Path(__file__).resolve().parents[1]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * WAKE_RATE), dtype=np.int16)


def feed(det: WakeWordDetector, audio: np.ndarray, block: int = FRAME_SAMPLES) -> list[Detection]:
    found: list[Detection] = []
    for start in range(0, len(audio), block):
        found.extend(det.process(audio[start : start + block]))
    return found


@pytest.fixture(scope="module")
def shared_detector() -> WakeWordDetector:
    return WakeWordDetector(["hey_jarvis"], thresholds=0.5, refractory_s=2.0, seed=0)


@pytest.fixture
def detector(shared_detector: WakeWordDetector) -> Iterator[WakeWordDetector]:
    np.random.seed(0)
    shared_detector.reset()
    yield shared_detector


def test_fixtures_exist() -> None:
    assert POSITIVE.is_file() and POSITIVE_2.is_file()
    assert len(NEGATIVES) >= 5


def test_positive_wakes_exactly_once(detector: WakeWordDetector) -> None:
    audio = np.concatenate((silence(1), read_wav_16k(POSITIVE), silence(2)))
    found = feed(detector, audio)
    assert len(found) == 1, found
    (hit,) = found
    assert hit.model == "hey_jarvis"
    assert hit.score >= 0.5
    # the detection lands within the utterance or shortly after it
    assert WAKE_RATE <= hit.at_sample <= len(audio) - WAKE_RATE
    assert hit.at_sample % FRAME_SAMPLES == 0


def test_score_stays_high_for_several_frames_without_extra_wakes(detector: WakeWordDetector) -> None:
    audio = np.concatenate((silence(1), read_wav_16k(POSITIVE), silence(1)))
    above = 0
    wakes = 0
    for start in range(0, len(audio), FRAME_SAMPLES):
        wakes += len(detector.process(audio[start : start + FRAME_SAMPLES]))
        above += detector.scores["hey_jarvis"] >= 0.5
    assert above >= 2  # without the refractory logic this would be several wakes
    assert wakes == 1


@pytest.mark.parametrize("negative", NEGATIVES, ids=lambda p: p.stem)
def test_negative_does_not_wake(detector: WakeWordDetector, negative: Path) -> None:
    audio = np.concatenate((silence(1), read_wav_16k(negative), silence(1)))
    assert feed(detector, audio) == []


@pytest.mark.parametrize("block", [160, 1000, 1280, 4000, 16000])
def test_block_size_does_not_change_detection(detector: WakeWordDetector, block: int) -> None:
    audio = np.concatenate((silence(1), read_wav_16k(POSITIVE), silence(2)))
    reference = feed(detector, audio, FRAME_SAMPLES)
    detector.reset()
    found = feed(detector, audio, block)
    assert len(reference) == 1
    assert len(found) == 1
    assert found[0].at_sample == reference[0].at_sample
    assert found[0].score == pytest.approx(reference[0].score, abs=1e-6)
    assert detector.samples_fed == len(audio)


def test_two_utterances_apart_wake_twice_close_wake_once(detector: WakeWordDetector) -> None:
    clip = read_wav_16k(POSITIVE_2)
    apart = np.concatenate((silence(1), clip, silence(3), clip, silence(1)))
    assert len(feed(detector, apart)) == 2
    detector.reset()
    close = np.concatenate((silence(1), clip, clip, silence(1)))
    assert len(feed(detector, close)) == 1  # second one falls inside the 2 s refractory period


def test_per_model_thresholds(detector: WakeWordDetector) -> None:
    strict = WakeWordDetector(["hey_jarvis", "alexa"], thresholds={"hey_jarvis": 0.9999}, seed=0, verify=False)
    assert strict.thresholds == {"hey_jarvis": 0.9999, "alexa": 0.5}
    audio = np.concatenate((silence(1), read_wav_16k(POSITIVE), silence(1)))
    assert feed(strict, audio) == []
    assert set(strict.scores) == {"hey_jarvis", "alexa"}
    with pytest.raises(ValueError, match="unknown"):
        WakeWordDetector(["hey_jarvis"], thresholds={"hey_mycroft": 0.5})
    for bad in (0.0, 1.0, 1.5):  # the same range the settings accept
        with pytest.raises(ValueError, match="between 0 and 1"):
            WakeWordDetector(["hey_jarvis"], thresholds={"hey_jarvis": bad})


def test_reset_clears_state(detector: WakeWordDetector) -> None:
    feed(detector, np.concatenate((silence(1), read_wav_16k(POSITIVE))), 1000)
    assert detector.samples_fed > 0
    detector.reset()
    assert detector.samples_fed == 0
    assert detector.scores == {"hey_jarvis": 0.0}


def test_float_input_is_accepted(detector: WakeWordDetector) -> None:
    audio = np.concatenate((silence(1), read_wav_16k(POSITIVE), silence(1))).astype(np.float32) / 32768
    assert len(feed(detector, audio, 4000)) == 1


def test_resolve_bundled_names() -> None:
    for name in BUNDLED_MODELS:
        path = resolve_model(name)
        assert path.is_file() and path.stem == name


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "my_wake.tflite"
    with pytest.raises(WakeWordModelError) as err:
        resolve_model(str(missing))
    assert str(missing) in str(err.value)
    assert "hey_jarvis" in str(err.value)  # lists the bundled names
    with pytest.raises(WakeWordModelError, match="hey_jarvis"):
        WakeWordDetector(["jarvis"])


def test_broken_model_file_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a model at all" * 10)
    with pytest.raises(WakeWordModelError) as err:
        WakeWordDetector([str(garbage)])
    assert str(garbage) in str(err.value)

    # right file identifier, broken content: caught when LiteRT loads it
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(resolve_model("hey_jarvis").read_bytes()[:64])
    with pytest.raises(WakeWordModelError) as err:
        WakeWordDetector([str(truncated)])
    assert str(truncated) in str(err.value)


def test_broken_onnx_model_is_named(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00\x01 definitely not onnx")
    with pytest.raises(WakeWordModelError) as err:
        WakeWordDetector([str(broken)])
    assert str(broken) in str(err.value)


def test_wrong_suffix_is_named(tmp_path: Path) -> None:
    other = tmp_path / "model.bin"
    other.write_bytes(b"x")
    with pytest.raises(WakeWordModelError, match="model.bin"):
        resolve_model(str(other))


def _write_wav(path: Path, audio: np.ndarray, rate: int, channels: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.astype("<i2").tobytes())


def test_score_file_resamples(tmp_path: Path, shared_detector: WakeWordDetector) -> None:
    import soxr

    clip = read_wav_16k(POSITIVE).astype(np.float32) / 32768
    up = soxr.resample(clip, WAKE_RATE, 48000)
    stereo = np.repeat((up * 32767).astype(np.int16)[:, None], 2, axis=1).reshape(-1)
    path = tmp_path / "stereo48k.wav"
    _write_wav(path, stereo, 48000, 2)
    assert abs(len(read_wav_16k(path)) - len(clip)) <= 2
    scores = score_file(path, detector=shared_detector)
    assert scores["hey_jarvis"] >= 0.5
    assert score_file(NEGATIVES[0], detector=shared_detector)["hey_jarvis"] < 0.5


def test_main_wakeword_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_wakeword([str(POSITIVE), str(NEGATIVES[0])]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["detected"]["hey_jarvis"] for line in lines] == [True, False]
    assert lines[0]["scores"]["hey_jarvis"] >= 0.5


def test_main_wakeword_bad_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_wakeword(["-m", "/nonexistent/x.tflite", str(POSITIVE)]) == 2
    assert "/nonexistent/x.tflite" in capsys.readouterr().err


def test_heavy_modules_not_imported() -> None:
    """Loading the detector imports none of openWakeWord's package or its heavy dependencies (onnxruntime,
    scipy, sklearn, tflite_runtime): the models run on LiteRT through the appliance's own pipeline."""
    code = (
        "import sys, json\n"
        "import numpy as np\n"
        "from appliance.triggers.wakeword import WakeWordDetector\n"
        "d = WakeWordDetector(['hey_jarvis'], seed=0)\n"
        "d.process(np.zeros(4000, dtype=np.int16))\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules}\n"
        "    & {'onnxruntime', 'scipy', 'sklearn', 'openwakeword', 'tflite_runtime'})\n"
        "print(json.dumps({'heavy': heavy, 'litert': 'ai_edge_litert.interpreter' in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "litert": True}


def _stream_shapes(det: WakeWordDetector) -> tuple[tuple[int, ...], tuple[int, ...]]:
    models = det._engine.features.models
    return models._melspec.input_shape, models._embedding.input_shape


def test_models_run_at_streaming_size(detector: WakeWordDetector) -> None:
    """The feature models are planned for one 80 ms frame (plus its 480-sample context) and one
    embedding window, never a larger batch, before and after a reset; streaming scores are checked by
    the tests above and tests/test_wake_reference.py."""
    streaming = ((1, FRAME_SAMPLES + 480), (1, 76, 32, 1))
    assert _stream_shapes(WakeWordDetector(["hey_jarvis"], seed=0)) == streaming
    feed(detector, silence(2))
    detector.reset()
    assert _stream_shapes(detector) == streaming
    assert len(feed(detector, np.concatenate((silence(1), read_wav_16k(POSITIVE), silence(1))))) == 1


def test_twin_shares_the_models_but_not_the_stream() -> None:
    """The self-wake twin runs on the detector's loaded models; interleaved frames of two streams
    score exactly as two separate detectors would."""
    speech = np.concatenate((silence(1), read_wav_16k(POSITIVE), silence(1)))
    other = np.concatenate((silence(1), read_wav_16k(NEGATIVES[0])))[: len(speech)]
    other = np.pad(other, (0, len(speech) - len(other)))
    alone_a = WakeWordDetector(["hey_jarvis"])
    alone_b = WakeWordDetector(["hey_jarvis"])
    main = WakeWordDetector(["hey_jarvis"])
    twin = main.twin()
    assert twin._engine.features.models is main._engine.features.models
    woke: list[int] = []
    alone_woke: list[int] = []
    twin_woke: list[int] = []
    for start in range(0, len(speech) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        a, b = speech[start : start + FRAME_SAMPLES], other[start : start + FRAME_SAMPLES]
        woke += [d.at_sample for d in main.process(a)]
        alone_woke += [d.at_sample for d in alone_a.process(a)]
        twin_woke += [d.at_sample for d in twin.process(b)]
        alone_b.process(b)
        assert main.scores == alone_a.scores and main.verifier_scores == alone_a.verifier_scores
        assert twin.scores == alone_b.scores and twin.verifier_scores == alone_b.verifier_scores
    assert len(woke) == 1 and woke == alone_woke and twin_woke == []


def test_a_model_file_of_the_wrong_kind_is_named() -> None:
    """A .tflite that is not a wake-word classifier (here openWakeWord's own embedding model)."""
    from appliance.triggers.wake_models import EMBEDDING_MODEL, feature_model

    wrong = feature_model(EMBEDDING_MODEL)
    with pytest.raises(WakeWordModelError) as err:
        WakeWordDetector([str(wrong)])
    assert str(wrong) in str(err.value) and "expected (1, N, 96)" in str(err.value)
