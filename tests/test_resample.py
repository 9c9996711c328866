from __future__ import annotations

import numpy as np
import pytest

from appliance.audio.resample import StreamResampler


def sine(rate: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16)


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    n = min(reference.size, test.size)
    ref, tst = reference[:n].astype(np.float64), test[:n].astype(np.float64)
    noise = np.sum((ref - tst) ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(np.sum(ref**2) / noise)


@pytest.mark.parametrize(
    ("src", "dst"), [(44100, 24000), (48000, 24000), (16000, 24000), (24000, 44100), (24000, 48000), (24000, 16000),
                     (48000, 16000)]
)
def test_block_by_block_matches_one_go(src: int, dst: int) -> None:
    signal = sine(src)
    whole = StreamResampler(src, dst)
    one_go = np.concatenate([whole.process(signal), whole.flush()])
    streamed = StreamResampler(src, dst)
    block = src * 20 // 1000 + 7  # an odd block size, as devices deliver
    parts = [streamed.process(signal[i : i + block]) for i in range(0, signal.size, block)]
    parts.append(streamed.flush())
    blocks = np.concatenate(parts)
    assert abs(blocks.size - one_go.size) <= 1
    assert abs(one_go.size - signal.size * dst / src) <= 2
    assert snr_db(one_go, blocks) >= 60


def test_same_rate_passes_through() -> None:
    r = StreamResampler(24000, 24000)
    x = sine(24000, 0.1)
    assert np.array_equal(r.process(x), x)
    assert r.flush().size == 0


@pytest.mark.parametrize(("src", "dst"), [(48000, 16000), (24000, 48000), (44100, 24000)])
def test_the_output_depends_on_the_input_alone(src: int, dst: int) -> None:
    """libsoxr dithers int16 output with a random seed per stream; two resamplers fed the same audio
    must agree sample for sample (the wake word's scores on quiet audio hung on that dither)."""
    rng = np.random.default_rng(1)
    signal = np.concatenate([sine(src, 0.3), (rng.standard_normal(src // 3) * 40).astype(np.int16)])
    outputs = []
    for _ in range(2):
        r = StreamResampler(src, dst)
        outputs.append(np.concatenate([r.process(signal[i:i + 960]) for i in range(0, signal.size, 960)]))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_digital_silence_stays_silent() -> None:
    r = StreamResampler(48000, 16000)
    out = np.concatenate([r.process(np.zeros(960, np.int16)) for _ in range(50)])
    assert out.size > 15000 and not out.any()


def test_float32_rounds_and_saturates_exactly_as_the_float64_path() -> None:
    from appliance.audio.formats import to_int16

    rng = np.random.default_rng(7)
    values = np.concatenate([rng.standard_normal(20_000) * 40_000,  # a fifth beyond int16's range
                             np.arange(-40.5, 40.5, 0.5),  # ties round to even either way
                             [32766.5, 32767.5, -32768.5, -32769.0, 1e9, -1e9]]).astype(np.float32)
    fast = to_int16(values)
    assert fast.dtype == np.int16
    assert np.array_equal(fast, to_int16(values.astype(np.float64)))
    assert fast[-6:].tolist() == [32766, 32767, -32768, -32768, 32767, -32768]
