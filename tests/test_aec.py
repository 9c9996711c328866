"""Echo handling: SpeexDSP echo canceller, echo gate, playback reference buffer.

Speech-like signals come from committed espeak-ng fixtures (scripts/make_aec_fixtures.sh);
the echo path is synthetic (appliance.bench.echo_metrics).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from appliance.audio.aec import EchoCanceller, EchoCancellerUnavailable, speexdsp_available
from appliance.audio.reference import ReferenceBuffer
from appliance.bench.echo_metrics import (
    EchoScenario,
    correlation,
    erle_db,
    make_echo_path,
    make_scenario,
    read_wav_int16,
    score,
)

FIXTURES = Path(__file__).parent / "fixtures" / "aec"
RATE = 24000

needs_speex = pytest.mark.skipif(
    not speexdsp_available(), reason="libspeexdsp not loadable (apt-get install libspeexdsp1)"
)


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, np.ndarray]:
    near, r1 = read_wav_int16(FIXTURES / "near_user.wav")
    far, r2 = read_wav_int16(FIXTURES / "far_agent.wav")
    assert r1 == r2 == RATE
    return near, far


def _scenario(speech: tuple[np.ndarray, np.ndarray], seed: int, gain_db: float = 0.0) -> EchoScenario:
    near, far = speech
    path = make_echo_path(RATE, seed=seed, echo_gain_db=gain_db)
    assert 20.0 <= path.delay_ms <= 60.0
    return make_scenario(near, far, RATE, path=path, far_repeats=3, seed=seed)


def _aligned(ec: EchoCanceller, out: np.ndarray, n: int) -> np.ndarray:
    lat = ec.latency_samples
    a = np.zeros(n, dtype=np.int16)
    a[: len(out) - lat] = out[lat:]
    return a


def test_fixtures_are_speech_like(speech: tuple[np.ndarray, np.ndarray]) -> None:
    for x in speech:
        assert x.dtype == np.int16 and len(x) == 4 * RATE
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        assert 500 < rms < 10000


def test_missing_library_error_names_debian_package() -> None:
    with pytest.raises(EchoCancellerUnavailable, match="libspeexdsp1"):
        EchoCanceller(RATE, library_path="/nonexistent/libspeexdsp.so.1")


@needs_speex
@pytest.mark.parametrize("seed", [0, 1, 4])
def test_erle_and_double_talk(speech: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    sc = _scenario(speech, seed)
    with EchoCanceller(RATE) as ec:
        assert ec.frame_size == 480
        out = _aligned(ec, ec.process(sc.mic, sc.reference), len(sc.mic))
    # ERLE on echo-only audio, skipping the first 2 s: Speex needs ~1.5-2 s of far-end speech to converge.
    s = score(sc, out, skip_s=2.0)
    assert s.erle_db >= 20.0, s
    assert s.double_talk_corr >= 0.8, s
    assert s.double_talk_corr > s.mic_double_talk_corr + 0.1, s  # the user's voice got clearer, not eaten


@needs_speex
def test_linear_filter_only_still_cancels(speech: tuple[np.ndarray, np.ndarray]) -> None:
    sc = _scenario(speech, 2)
    with EchoCanceller(RATE, residual_suppression=False) as ec:
        assert ec.latency_samples == 0
        out = ec.process(sc.mic, sc.reference)
    out = np.concatenate([out, np.zeros(len(sc.mic) - len(out), dtype=np.int16)])
    e0, e1 = sc.echo_only
    assert erle_db(sc.mic, out, e0 + 3 * RATE, e1) >= 12.0
    assert score(sc, out).double_talk_corr >= 0.95


@needs_speex
def test_streaming_odd_blocks_equals_frame_aligned(speech: tuple[np.ndarray, np.ndarray]) -> None:
    sc = _scenario(speech, 3)
    n = 6 * RATE
    mic, ref = sc.mic[:n], sc.reference[:n]
    with EchoCanceller(RATE) as ec:
        whole = ec.process(mic, ref)
    assert len(whole) == n
    rng = np.random.default_rng(7)
    parts = []
    pos = 0
    with EchoCanceller(RATE) as ec:
        while pos < n:
            k = min(int(rng.choice([1, 7, 160, 333, 479, 480, 481, 1000, 2047])), n - pos)
            got = ec.process(mic[pos : pos + k], ref[pos : pos + k])
            assert len(got) % ec.frame_size == 0
            parts.append(got)
            pos += k
            assert ec.pending == pos % ec.frame_size
    np.testing.assert_array_equal(np.concatenate(parts), whole)


@needs_speex
def test_reset_forgets_state(speech: tuple[np.ndarray, np.ndarray]) -> None:
    sc = _scenario(speech, 0)
    mic, ref = sc.mic[: 2 * RATE], sc.reference[: 2 * RATE]
    with EchoCanceller(RATE) as ec:
        first = ec.process(mic, ref)
        ec.process(mic[:100], ref[:100])  # leave a partial frame buffered
        ec.reset()
        assert ec.pending == 0
        np.testing.assert_array_equal(ec.process(mic, ref), first)


@needs_speex
def test_no_playback_passes_near_end(speech: tuple[np.ndarray, np.ndarray]) -> None:
    near, _ = speech
    with EchoCanceller(RATE) as ec:
        out = _aligned(ec, ec.process(near, np.zeros_like(near)), len(near))
    assert correlation(out, near, 0, len(near) - ec.frame_size) >= 0.95


@needs_speex
def test_bad_input_and_close() -> None:
    ec = EchoCanceller(RATE, tail_ms=100)
    with pytest.raises(ValueError):
        ec.process(np.zeros(10, np.int16), np.zeros(11, np.int16))
    with pytest.raises(TypeError):
        ec.process(np.zeros(10, np.float32), np.zeros(10, np.float32))
    ec.close()
    ec.close()
    with pytest.raises(RuntimeError):
        ec.process(np.zeros(10, np.int16), np.zeros(10, np.int16))


# -- echo gate ----------------------------------------------------------------------------------


def test_reference_buffer_delay_and_continuity() -> None:
    rb = ReferenceBuffer(capacity=1000, delay=30)
    rb.write(np.arange(100, dtype=np.int16))
    np.testing.assert_array_equal(rb.read(20), np.arange(50, 70))  # ends 30 behind the head
    np.testing.assert_array_equal(rb.read(20), np.arange(70, 90))  # continues, not re-aligned
    assert rb.resyncs == 0
    # 90..110 would read samples not written yet: the player writes in bursts, and handing the
    # canceller silence for what the speaker emits breaks it, so the reader re-aligns instead.
    np.testing.assert_array_equal(rb.read(20), np.arange(50, 70))
    assert rb.resyncs == 1 and rb.underrun_samples == 0
    assert rb.breaks == 0  # a burst of the player's, not a moved echo
    rb.write(np.arange(100, 200, dtype=np.int16))
    np.testing.assert_array_equal(rb.read(10), np.arange(70, 80))  # continues from there


def test_reference_buffer_before_playback_and_wraparound() -> None:
    rb = ReferenceBuffer(capacity=64, delay=0, max_drift=10_000)
    assert not rb.read(16).any()  # nothing written: silence
    rb.resync()
    data = np.arange(1, 1001, dtype=np.int16)
    for i in range(0, 1000, 24):
        rb.write(data[i : i + 24])
        got = rb.read(len(data[i : i + 24]))
        np.testing.assert_array_equal(got, data[i : i + 24])
    rb.write(np.arange(500, dtype=np.int16))  # more than capacity: only the newest 64 kept
    assert rb.written == 1500
    rb.resync()
    np.testing.assert_array_equal(rb.read(64), np.arange(436, 500))


def test_reference_buffer_resyncs_after_drift() -> None:
    rb = ReferenceBuffer(capacity=4800, delay=0, max_drift=480)
    rb.write(np.ones(480, np.int16))
    rb.read(480)
    rb.write(np.ones(4000, np.int16))  # the reader fell far behind
    assert rb.read(480).all()
    assert rb.resyncs == 1 and rb.breaks == 1  # a drift moves the echo: the canceller must re-learn


def test_reference_buffer_threaded_spsc() -> None:
    """One producer thread, one consumer thread: every sample arrives once, in order."""
    rb = ReferenceBuffer(capacity=1024, delay=0, max_drift=10**9)
    total, blk = 48000, 240
    data = (np.arange(total) % 30000).astype(np.int16)
    consumed = [0]
    first_written, first_read = threading.Event(), threading.Event()

    def producer() -> None:
        rb.write(data[:blk])
        first_written.set()
        first_read.wait(5)
        for i in range(blk, total, blk):
            while rb.written - consumed[0] > 512:  # keep within capacity, like a real-time device
                threading.Event().wait(0.0002)
            rb.write(data[i : i + blk])

    t = threading.Thread(target=producer)
    t.start()
    first_written.wait(5)
    got = [rb.read(blk)]
    consumed[0] = blk
    first_read.set()
    while consumed[0] < total:
        if rb.written - consumed[0] >= blk:
            got.append(rb.read(blk))
            consumed[0] += blk
        else:
            threading.Event().wait(0.0002)
    t.join(5)
    np.testing.assert_array_equal(np.concatenate(got), data)
    assert rb.resyncs == 0


# -- bench --------------------------------------------------------------------------------------


@needs_speex
def test_bench_reports_figures() -> None:
    from appliance.bench.aec import bench_aec

    rows = {r["name"]: r for r in bench_aec(n_paths=1)}
    for name in ("aec_cpu_us_per_20ms", "aec_erle_db", "aec_double_talk_corr"):
        assert name in rows and isinstance(rows[name]["value"], float)
    assert rows["aec_cpu_us_per_20ms"]["unit"] == "us"
    assert rows["aec_erle_db"]["value"] >= 20.0
