"""The echo canceller gets, for each microphone block, what the speaker played while it was captured,
however far behind the worker that cancels the echo runs.

Blocks are played and captured in real-time order (the player writes a block, the microphone
captures one), while the worker processes them `backlog` blocks late, as it does behind a slow
wake-word frame on a busy CPU. Reading the reference on the worker paired each block with audio
played `backlog` blocks later: an echo that leads its reference, which the canceller cannot model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

from appliance.audio.aec import EchoCanceller, speexdsp_available
from appliance.audio.capture import MicStream
from appliance.audio.devices import DeviceInfo
from appliance.audio.echo_leak import LOUD_FRAME_RMS
from appliance.audio.formats import to_int16
from appliance.audio.pipeline import MicPipeline
from appliance.audio.reference import CaptureReferenceReader, ReferenceBuffer
from appliance.bench.echo_metrics import erle_db, make_echo_path, read_wav_int16
from appliance.events import ApplianceEvent
from tests.audio_compare import best_match
from tests.test_aec import FIXTURES

RATE = 24000
BLOCK = 480  # 20 ms
PERSON = read_wav_int16(FIXTURES / "near_user.wav")[0]

pytestmark = pytest.mark.skipif(not speexdsp_available(), reason="libspeexdsp not loadable")


class _Flags:
    input_overflow = False


def _model_audio(backlog: int, repeats: int = 3, xrun: str | None = None, xrun_at: int = 0,
                 xrun_ms: int = 20, publish: Callable[[ApplianceEvent], None] | None = None,
                 lag_ms: int = 0, echo_scale: float = 1.0, keep: list[MicPipeline] | None = None,
                 distortion: float = 0.0, wobble_ms: float = 0.0, person_at_s: float | None = None,
                 person_gain_db: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Play the agent's speech `repeats` times over an echo path; return (mic, what reached the model).

    `xrun` at block `xrun_at`: "underflow", the speaker plays `xrun_ms` of silence the reference never
    saw, and says so; "overflow", the microphone loses `xrun_ms` of samples, and says so."""
    far, rate = read_wav_int16(FIXTURES / "far_agent.wav")
    assert rate == RATE
    played = np.concatenate([far] * repeats)
    played = played[: played.size // BLOCK * BLOCK]
    gap, at = RATE * xrun_ms // 1000, xrun_at * BLOCK
    emitted = played
    if xrun == "underflow":
        emitted = np.concatenate([played[:at], np.zeros(gap, np.int16), played[at:]])[: played.size]
    # `lag_ms`: the echo comes that much later than the echo path's own delay (a longer output latency).
    lagged = np.concatenate([np.zeros(RATE * lag_ms // 1000, np.int16), emitted])[: emitted.size]
    echo = echo_scale * make_echo_path(RATE, seed=3).apply(lagged, np.random.default_rng(4))
    # `distortion`: a loudspeaker's nonlinearity, which a linear canceller cannot model (it converges,
    # and leaves a remnant that grows with the echo's loudness).
    peak = max(float(np.max(np.abs(echo))), 1.0)
    if wobble_ms:  # `wobble_ms`: the echo's delay swings by that much and back every 2 s (a drifting loop)
        t = np.arange(echo.size, dtype=np.float64)
        echo = np.interp(t - wobble_ms * RATE / 1000 * (1 - np.cos(2 * np.pi * t / (2 * RATE))) / 2, t, echo)
    mic_float = echo + distortion * echo * np.abs(echo) / peak
    if person_at_s is not None:  # a person talks over the answer from `person_at_s` on
        at_person = int(person_at_s * RATE)
        voice = PERSON[: mic_float.size - at_person].astype(np.float64) * 10 ** (person_gain_db / 20)
        mic_float[at_person : at_person + voice.size] += voice
    mic_audio = to_int16(mic_float)
    if xrun == "overflow":
        mic_audio = np.concatenate([mic_audio[:at], mic_audio[at + gap:], np.zeros(gap, np.int16)])

    mic = MicStream(DeviceInfo(0, "test mic", "none", 1, 0, RATE), RATE, queue_blocks=10_000)
    loop = asyncio.new_event_loop()
    pipeline = MicPipeline(mic, loop, None, on_wake=lambda d: None, on_stalled=lambda r: None, lookback_ms=0,
                           publish=publish or (lambda event: None))
    if keep is not None:
        keep.append(pipeline)
    reference = ReferenceBuffer(capacity=RATE * 2)
    pipeline.cancel_echo(EchoCanceller(RATE), reference, RATE)
    sink = pipeline.open_sink(max_seconds=60)

    def work_one() -> None:
        item = mic.read(0)
        assert item is not None
        pipeline.process_block(item.samples, item.captured_at, item.reference)

    for i in range(played.size // BLOCK):
        if xrun == "underflow" and i == xrun_at:
            reference.mark_break()  # what the player does when its callback reports the underflow
        reference.write(played[i * BLOCK:(i + 1) * BLOCK])  # the speaker plays a block...
        flags = _Flags()
        flags.input_overflow = xrun == "overflow" and i == xrun_at
        mic._callback(mic_audio[i * BLOCK:(i + 1) * BLOCK, None], BLOCK, None, flags)  # ...the mic hears one
        if i >= backlog:
            work_one()
    while not mic.blocks.empty():
        work_one()
    loop.run_until_complete(asyncio.sleep(0))  # deliver the blocks the worker handed to the loop
    out = b"".join(sink.queue.get_nowait()[1] for _ in range(sink.queue.qsize()))
    loop.close()
    return mic_audio, np.frombuffer(out, dtype=np.int16)


@pytest.mark.parametrize("backlog", [0, 10])
def test_the_canceller_converges_however_late_the_worker_runs(backlog: int) -> None:
    mic, out = _model_audio(backlog)
    assert out.size >= mic.size - 2 * BLOCK
    # The last 4 s: long past the warm-up mute and the canceller's convergence.
    start, stop = mic.size - 4 * RATE, mic.size - 2 * BLOCK
    erle = erle_db(mic, out, start, stop)
    assert erle >= 20.0, f"echo only {erle:.1f} dB down with the worker {backlog} blocks behind"


@pytest.mark.parametrize("xrun", ["underflow", "overflow"])
def test_after_an_xrun_the_model_does_not_hear_the_agent_while_the_canceller_relearns(xrun: str) -> None:
    """20 ms of xrun 8 s in: the echo moves against the reference and the canceller cancels nothing
    for seconds (about 1-7 dB), so the model-bound audio is muted again until it has re-learned."""
    at = 8 * RATE // BLOCK
    events: list[ApplianceEvent] = []
    mic, out = _model_audio(0, repeats=4, xrun=xrun, xrun_at=at, publish=events.append)
    # One event (the log line, the metric, the device API's) for the one re-learning.
    assert [(e.name, e.fields()) for e in events] == [
        ("aec_relearn", {"overflows": int(xrun == "overflow"), "reference_breaks": int(xrun == "underflow")})]
    start = at * BLOCK
    assert erle_db(mic, out, start - 2 * RATE, start) >= 20.0  # converged before
    after = erle_db(mic, out, start, start + 2 * RATE)
    assert after >= 20.0, f"the echo reached the model after the {xrun}: only {after:.1f} dB down"
    end = mic.size - 2 * BLOCK
    assert erle_db(mic, out, end - 2 * RATE, end) >= 20.0  # and it cancels again afterwards


def test_the_player_reports_an_underflow_to_the_reference() -> None:
    from appliance.audio.playback import Player

    player = Player(DeviceInfo(0, "test speaker", "none", 0, 1, 48000.0), 48000, start_ms=0)
    player.reference = ReferenceBuffer(capacity=48000)

    class Underflow:
        output_underflow = True
        input_overflow = False

    out = np.zeros((960, 1), np.int16)
    player._callback(out, 960, None, _Flags())
    assert player.reference.breaks == 0
    player._callback(out, 960, None, Underflow())
    assert player.reference.breaks == 1 and player.stats.device_underflows == 1


def test_reference_reads_keep_exact_counts_across_rates() -> None:
    buffer = ReferenceBuffer(capacity=48000 * 2)
    buffer.write(np.arange(48000, dtype=np.int16))
    reader = CaptureReferenceReader(buffer, 48000, 44100)
    # 1000-frame blocks: 1088.4 reference samples each, so rounding per block would lose 0.4 a block.
    sizes = [reader.read_for(1000).size for _ in range(50)]
    assert set(sizes) == {1088, 1089}
    assert sum(sizes) == round(50 * 1000 * 48000 / 44100)  # exact over the run, not 50 * 1088


def test_an_echo_the_canceller_cannot_model_never_reaches_the_model() -> None:
    """The echo lags the reference by more than the canceller's 200 ms tail: it cannot converge.
    A fixed 2 s warm-up then trusted it and let the agent's voice through (CI: the answer interrupted
    itself at 2.95 s when the test card's playback path ran 150 ms longer than usual). Now it is not
    trusted (the conversation keeps gating, as `gate` does), and one warning says what to set."""
    events: list[ApplianceEvent] = []
    keep: list[MicPipeline] = []
    _model_audio(0, repeats=4, lag_ms=350, publish=events.append, keep=keep)
    learning = keep[0].echo_learning
    assert not learning.ready, f"trusted after {learning.learned_s:.1f} s at {learning.erle_db:.1f} dB"
    assert learning.learned_s > 10.0
    assert [e.name for e in events] == ["aec_not_converging"]
    assert events[0].fields()["erle_db"] < 10.0


@pytest.mark.parametrize(("lag_ms", "echo_scale"), [(0, 1.0), (100, 1.0), (0, 0.02), (0, 0.0), (350, 0.05)])
def test_an_echo_the_canceller_cancels_or_that_is_quiet_is_trusted_after_the_warm_up(
    lag_ms: int, echo_scale: float
) -> None:
    """Within the tail it converges; a weak echo (headphones, a speaker far away) leaves little to
    cancel. Either way the person's voice over the answer reaches the model after the warm-up."""
    events: list[ApplianceEvent] = []
    keep: list[MicPipeline] = []
    _model_audio(0, repeats=2, lag_ms=lag_ms, echo_scale=echo_scale, publish=events.append, keep=keep)
    learning = keep[0].echo_learning
    assert learning.ready and learning.learned_s <= 3.0, (learning.learned_s, learning.erle_db)
    assert events == []


def _loud_frames_while_the_agent_speaks(model: np.ndarray, repeats: int, skip_s: float = 2.0) -> int:
    """20-ms frames of speech level (echo_leak.LOUD_FRAME_RMS) the model got while the speaker played."""
    far, _ = read_wav_int16(FIXTURES / "far_agent.wav")
    played = np.concatenate([far] * repeats).astype(np.float64)
    n = min(model.size, played.size) // BLOCK
    frame_rms = lambda x: np.sqrt(np.mean(x[: n * BLOCK].astype(np.float64).reshape(n, BLOCK) ** 2, axis=1))  # noqa: E731
    speaking = frame_rms(played) > 100
    speaking[: int(skip_s * RATE) // BLOCK] = False
    return int(np.sum(speaking & (frame_rms(model) > LOUD_FRAME_RMS)))


@pytest.mark.parametrize(("wobble_ms", "echo_scale"), [(0.25, 0.35), (0.5, 0.35), (0.5, 0.5)])
def test_a_loud_echo_the_canceller_only_partly_cancels_never_reaches_the_model(
    wobble_ms: float, echo_scale: float
) -> None:
    """Issue 18 item 8: the echo loop drifts a little (PulseAudio's loopback keeps its latency by
    resampling), the canceller still takes 10-20 dB off, and was trusted; a loud echo's remnant then
    reached the model as 20-ms bursts of speech level, and the answer interrupted itself. Before:
    14-31 such frames reached the model here (up to 1634 RMS). Now the trust needs no loud residual
    frame and is withdrawn when the remnant comes back (aec_leak): none reaches it."""
    events: list[ApplianceEvent] = []
    keep: list[MicPipeline] = []
    _, model = _model_audio(0, repeats=3, echo_scale=echo_scale, wobble_ms=wobble_ms, publish=events.append,
                            keep=keep)
    assert _loud_frames_while_the_agent_speaks(model, repeats=3) == 0
    assert {e.name for e in events} <= {"aec_leak", "aec_not_converging"}


@pytest.mark.parametrize("person_gain_db", [0.0, -6.0])
def test_a_person_talking_over_the_answer_still_reaches_the_model(person_gain_db: float) -> None:
    """Barge-in by voice: once the canceller is trusted, a person over the answer is loud in the
    residual but about as loud as the microphone, and does not follow the reference: not taken for
    a leak, the trust stays and the model hears the person."""
    events: list[ApplianceEvent] = []
    keep: list[MicPipeline] = []
    far, _ = read_wav_int16(FIXTURES / "far_agent.wav")
    person_at_s = 2 * far.size / RATE + 0.5
    mic, model = _model_audio(0, repeats=3, echo_scale=1.0, person_at_s=person_at_s,
                              person_gain_db=person_gain_db, publish=events.append, keep=keep)
    assert keep[0].echo_learning.ready and events == [], [e.fields() for e in events]
    at = int(person_at_s * RATE)
    score, _ = best_match(model[at - RATE // 10 :], PERSON[: 3 * RATE])  # 3 s of it, most over the answer
    assert score >= 0.8, score
