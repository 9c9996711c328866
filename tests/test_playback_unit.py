"""The jitter buffer and its accounting, driven through the PortAudio callback directly (no stream)."""

from __future__ import annotations

import numpy as np

from appliance.audio.devices import DeviceInfo
from appliance.audio.playback import Player

DEV = DeviceInfo(0, "test", "ALSA", 0, 2, 48000.0)


class Flags:
    output_underflow = False


def pull(player: Player, frames: int) -> np.ndarray:
    out = np.zeros((frames, 1), dtype=np.int16)
    player._callback(out, frames, None, Flags())  # type: ignore[arg-type]
    return out[:, 0]


def tone(ms: int, rate: int = 24000) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * np.pi * 300 * t) * 10000).astype(np.int16).tobytes()


def test_waits_for_start_threshold_then_plays_and_reports_per_item() -> None:
    played: list[tuple[str, int, float]] = []
    p = Player(DEV, 48000, block_ms=20, start_ms=40, on_played=lambda i, c, ms: played.append((i, c, ms)))
    p.enqueue(tone(10), "a", 0)  # below 40 ms: not started
    assert not pull(p, 960).any()
    p.enqueue(tone(200), "a", 0)
    total = 0
    for _ in range(20):
        total += int(np.count_nonzero(pull(p, 960)))
    assert total > 0
    ms = sum(m for i, _, m in played if i == "a")
    assert 150 <= ms <= 210  # the resampler holds a few ms until end_of_audio
    p.end_of_audio("a", 0)
    for _ in range(5):
        pull(p, 960)
    ms = sum(m for i, _, m in played if i == "a")
    assert abs(ms - 210) < 2


def test_flush_silences_at_once_and_counts() -> None:
    p = Player(DEV, 48000, start_ms=0)
    p.enqueue(tone(500), "a", 0)
    assert pull(p, 960).any()
    dropped = p.flush()
    assert dropped > 0.3 * 48000
    assert not pull(p, 960).any()
    assert p.stats.flushes == 1


def test_bounded_buffer_drops_overflow() -> None:
    p = Player(DEV, 48000, max_s=0.1)
    p.enqueue(tone(300), "a", 0)
    assert p.queued_ms <= 100.0
    assert p.stats.dropped_samples > 0


def test_underrun_counted_while_answer_still_streaming_and_drained_after_end() -> None:
    drained: list[bool] = []
    p = Player(DEV, 48000, start_ms=0, on_drained=lambda: drained.append(True))
    p.enqueue(tone(100), "a", 0)
    for _ in range(5):
        pull(p, 960)  # runs dry before the answer ended
    assert p.stats.underruns >= 1
    assert not drained
    p.end_of_audio("a", 0)
    pull(p, 960)
    pull(p, 960)
    assert drained == [True]


def test_device_rate_samples_play_without_model_item() -> None:
    played: list[str] = []
    p = Player(DEV, 48000, on_played=lambda i, c, ms: played.append(i))
    p.enqueue_device_rate(np.full(960, 1000, np.int16))
    assert (pull(p, 960) == 1000).all()
    assert played == []


def test_audible_spans_cover_playback_and_tail_only() -> None:
    import time

    p = Player(DEV, 48000, start_ms=0)
    before = time.monotonic()
    p.enqueue(tone(100), "a", 0)
    pull(p, 960)
    during = time.monotonic()
    assert p.was_audible(during)
    assert not p.was_audible(before - 1.0)
    assert p.was_audible(p.audible_until + 0.2, tail_s=0.3)
    assert not p.was_audible(p.audible_until + 0.5, tail_s=0.3)


def test_capture_takes_the_configured_channel_of_a_multichannel_mic() -> None:
    from appliance.audio.capture import MicStream

    mic = MicStream(DeviceInfo(0, "array", "ALSA", 4, 0, 48000.0), 48000, channel=2)
    block = np.arange(960 * 4, dtype=np.int16).reshape(960, 4)

    class CaptureFlags:
        input_overflow = True

    mic._callback(block, 960, None, CaptureFlags())  # type: ignore[arg-type]
    item = mic.read(0.1)
    assert item is not None
    assert np.array_equal(item[1], block[:, 2])
    assert mic.stats.overflows == 1


def test_capture_refuses_a_channel_the_device_lacks() -> None:
    import pytest

    from appliance.audio.capture import MicStream
    from appliance.audio.devices import AudioDeviceError

    with pytest.raises(AudioDeviceError, match="channel 2"):
        MicStream(DeviceInfo(0, "usb", "ALSA", 1, 0, 48000.0), 48000, channel=2)


def test_level_follows_what_is_being_played() -> None:
    p = Player(DEV, 48000, start_ms=0)
    assert p.level == 0.0
    quiet = (np.ones(960, dtype=np.int16) * 100)
    loud = (np.ones(960, dtype=np.int16) * 16384)
    p.enqueue_device_rate(np.concatenate([quiet, loud]))
    pull(p, 480)  # halfway through the quiet 20 ms window
    assert abs(p.level - 100 / 32768) < 1e-4
    pull(p, 960)  # now inside the loud window
    assert abs(p.level - 0.5) < 1e-4
    pull(p, 960)  # drained
    assert p.level == 0.0


def test_an_answer_without_its_end_counts_one_underrun_and_is_given_up(monkeypatch: object) -> None:
    import appliance.audio.playback as playback

    clock = [1000.0]
    monkeypatch.setattr(playback.time, "monotonic", lambda: clock[0])  # type: ignore[attr-defined]
    drained: list[bool] = []
    p = Player(DEV, 48000, start_ms=0, on_drained=lambda: drained.append(True))
    p.enqueue(tone(40), "a", 0)  # audio, then nothing: the server never sends audio_end
    for _ in range(100):  # two seconds of callbacks at 20 ms
        pull(p, 960)
        clock[0] += 0.02
    assert p.stats.underruns == 1  # one dry spell, one underrun (not 50 a second)
    assert not drained
    for _ in range(10):
        pull(p, 960)
        clock[0] += 0.02
    assert drained == [True] and p.stats.abandoned_answers == 1
    assert not p.busy or clock[0] >= p.audible_until  # nothing holds the conversation open


def test_per_item_records_are_bounded() -> None:
    p = Player(DEV, 48000, start_ms=0)
    for i in range(100):
        p.enqueue(tone(20), f"item{i}", 0)
        p.end_of_audio(f"item{i}", 0)
        for _ in range(3):
            pull(p, 960)
    assert len(p.stats.item_played_ms) == playback_items_kept()
    assert "item99" in p.stats.item_played_ms and "item0" not in p.stats.item_played_ms


def playback_items_kept() -> int:
    from appliance.audio.playback import ITEMS_KEPT

    return ITEMS_KEPT
