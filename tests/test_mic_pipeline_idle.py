"""Idle, the microphone worker makes no 24 kHz audio and hands nothing to the loop per block; a
conversation's sink still begins with the look-back (`audio/pipeline.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from appliance.audio.capture import MicStream
from appliance.audio.devices import DeviceInfo
from appliance.audio.formats import MODEL_RATE
from appliance.audio.pipeline import AudioSink, MicPipeline
from appliance.audio.resample import StreamResampler

RATE = 48_000
BLOCK = RATE // 50  # 20 ms
LOOKBACK_MS = 300


class _Loop:
    """A real event loop whose hand-offs from the worker are counted."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.handed = 0
        real = self.loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any) -> Any:
            self.handed += 1
            return real(callback, *args)

        self.loop.call_soon_threadsafe = counted  # type: ignore[method-assign]

    def run_ready(self) -> None:
        self.loop.run_until_complete(asyncio.sleep(0))


@pytest.fixture
def loop() -> Iterator[_Loop]:
    counted = _Loop()
    yield counted
    counted.loop.close()


def _pipeline(loop: _Loop) -> MicPipeline:
    mic = MicStream(DeviceInfo(0, "test mic", "none", 1, 0, RATE), RATE)
    return MicPipeline(mic, loop.loop, None, on_wake=lambda d: None, on_stalled=lambda r: None,
                       lookback_ms=LOOKBACK_MS)


def _audio(blocks: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((blocks, BLOCK)) * 3000).astype(np.int16)


def _drain(sink: AudioSink) -> tuple[list[float], np.ndarray]:
    items = [sink.queue.get_nowait() for _ in range(sink.queue.qsize())]
    return [at for at, _ in items], np.frombuffer(b"".join(block for _, block in items), dtype=np.int16)


def test_idle_blocks_are_not_resampled_for_the_model_nor_handed_to_the_loop(loop: _Loop) -> None:
    pipeline = _pipeline(loop)
    for i, block in enumerate(_audio(100, seed=1)):
        pipeline.process_block(block, captured_at=float(i))
    assert loop.handed == 0
    assert pipeline.processed_blocks == 100


def test_a_sink_opened_after_idle_audio_begins_with_the_look_back_then_the_live_audio(loop: _Loop) -> None:
    pipeline = _pipeline(loop)
    idle, live = _audio(50, seed=2), _audio(25, seed=3)
    for i, block in enumerate(idle):
        pipeline.process_block(block, captured_at=float(i))
    sink = pipeline.open_sink()
    for i, block in enumerate(live):
        pipeline.process_block(block, captured_at=100.0 + i)
    loop.run_ready()
    times, got = _drain(sink)
    kept = LOOKBACK_MS // 20
    # The look-back and what followed, resampled as one stream: no gap, no repeat, no click at the seam.
    expected_in = np.concatenate([*idle[-kept:], *live])
    resampler = StreamResampler(RATE, MODEL_RATE)
    assert np.array_equal(got, resampler.process(expected_in))
    # The look-back keeps when it was heard (the filter holds the first block's samples back a little).
    assert 50 - kept <= times[0] < 50 - kept + 2
    assert times[-1] == 124.0


def test_a_second_conversation_gets_the_look_back_from_just_before_it(loop: _Loop) -> None:
    pipeline = _pipeline(loop)
    first, between, second = _audio(20, seed=4), _audio(40, seed=5), _audio(5, seed=6)
    pipeline.open_sink()
    for i, block in enumerate(first):
        pipeline.process_block(block, captured_at=float(i))
    loop.run_ready()  # the first conversation's audio reaches its sink
    handed_in_conversation = loop.handed
    pipeline.close_sink()
    for i, block in enumerate(between):
        pipeline.process_block(block, captured_at=200.0 + i)
    handed_idle = loop.handed
    sink = pipeline.open_sink()
    for i, block in enumerate(second):
        pipeline.process_block(block, captured_at=300.0 + i)
    loop.run_ready()
    times, _ = _drain(sink)
    kept = LOOKBACK_MS // 20
    assert 240.0 - kept <= times[0] < 240.0 - kept + 2  # nothing older, nothing from the first conversation
    assert times[-1] == 304.0
    assert handed_in_conversation > 0
    assert handed_idle == handed_in_conversation  # the 40 idle blocks between were kept, not handed over


def test_the_capture_queue_stays_bounded_and_counts_what_it_drops() -> None:
    mic = MicStream(DeviceInfo(0, "test mic", "none", 1, 0, RATE), RATE, queue_blocks=4)

    class _Flags:
        input_overflow = False

    for block in _audio(7, seed=8):
        mic._callback(block[:, None], BLOCK, None, _Flags())
    assert (mic.stats.blocks, mic.stats.dropped_blocks) == (4, 3)
    first = mic.read(timeout=0)
    assert first is not None and np.array_equal(first.samples, _audio(7, seed=8)[0])  # the oldest kept
    mic._callback(_audio(1, seed=9)[0][:, None], BLOCK, None, _Flags())  # room again: kept
    assert (mic.stats.blocks, mic.stats.dropped_blocks) == (5, 3)
