"""The safety net under the echo canceller: when the model reports speech while the agent speaks in
`aec` mode and what it heard was the agent's own echo (however that got past the canceller), the
rest of the conversation gates the microphone while the speaker plays, like `gate`: an answer
interrupts itself on its own audio once at most. Speech that was not our echo (a person talking over
the answer) changes nothing: barge-in by voice stays. Real PortAudio/ALSA, real SDK, fake server."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.audio.echo_leak import EchoVerdict
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import make_settings, running, start_and_ask, wait_until

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("was_echo", [True, False])
async def test_speech_heard_in_our_own_echo_gates_the_rest_of_the_conversation(
    card: FifoSoundCard, mock_pins: object, was_echo: bool
) -> None:
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", 24000), 4)
    async with FakeRealtimeServer(reply_audio=reply.tobytes(), tool_name=None, vad_threshold=600.0,
                                  reply_chunk_interval_s=None) as server:
        settings = make_settings(realtime={"url": server.url}, audio={"echo": "aec"},
                                 button={"pin": 17, "bounce_s": 0},
                                 earcons={"wake": False, "done": False, "error": False},
                                 session={"idle_timeout_s": 30})
        app = Appliance(settings, "sk-test", detector=None)
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await start_and_ask(app, log, card, button, read_wav(FIXTURES / "what_time_only.wav", card.rate))
            server.vad_threshold = float("inf")  # from now on only interrupt_now speaks for the model
            await asyncio.sleep(1.0)
            conversation, pipeline = app.conversation, app.pipeline
            assert conversation is not None and pipeline is not None
            conversation.echo.echo_canceller_ready = lambda: True  # trusted, as in the issue
            # What the last second sounded like to the model, as echo_leak.judge would say.
            pipeline._echo_history.judge_last = lambda seconds=1.0: EchoVerdict(  # type: ignore[method-assign]
                was_echo, 12.0 if was_echo else 1.0, 400.0, 0.4 if was_echo else 0.1)
            heard_at = time.monotonic()  # the speaker is playing the answer now
            assert not conversation._withheld(heard_at)
            await server.interrupt_now()  # the model: speech started
            await wait_until(lambda: bool(log.events("interrupted")), 10, "the interruption", log)
            withheld = conversation._withheld(heard_at)
            relearning = pipeline._relearn.is_set() or not pipeline.echo_learning.ready
    assert withheld == was_echo
    assert bool(log.events("aec_self_interruption")) == was_echo
    if was_echo:
        assert relearning


async def test_two_answers_cut_off_early_gate_the_rest_whatever_was_measured(
    card: FifoSoundCard, mock_pins: object
) -> None:
    """The backstop that trusts no measurement: the loop in issue 18 item 8 restarted the answer and
    cut it off about 1.7 s in, again and again. Even when the echo check calls it a person, the second
    answer cut off within 3 s of starting makes the rest of the conversation gate (`aec_gating`)."""
    reply = np.tile(read_wav(FIXTURES / "reply_24k.wav", 24000), 4)
    question = read_wav(FIXTURES / "what_time_only.wav", card.rate)
    async with FakeRealtimeServer(reply_audio=reply.tobytes(), tool_name=None, vad_threshold=600.0,
                                  reply_chunk_interval_s=None) as server:
        settings = make_settings(realtime={"url": server.url}, audio={"echo": "aec"},
                                 button={"pin": 17, "bounce_s": 0},
                                 earcons={"wake": False, "done": False, "error": False},
                                 session={"idle_timeout_s": 30})
        app = Appliance(settings, "sk-test", detector=None)
        button = mock_pins.pin(17)  # type: ignore[attr-defined]
        async with running(app) as log:
            await start_and_ask(app, log, card, button, question)
            conversation = app.conversation
            assert conversation is not None
            conversation.echo.echo_canceller_ready = lambda: True
            conversation.echo.model_heard_echo = lambda: False  # the check misses it, whatever the cause
            gated_after: list[bool] = []
            for _ in range(2):
                server.vad_threshold = float("inf")
                await asyncio.sleep(1.0)
                heard_at = time.monotonic()
                await server.interrupt_now()
                await wait_until(lambda: log.states()[-1] != "speaking", 10, "the interruption", log)
                gated_after.append(conversation._withheld(heard_at))
                server.vad_threshold = 600.0
                speaking = len([s for s in log.states() if s == "speaking"])
                card.say(question)
                await wait_until(lambda: log.states().count("speaking") > speaking, 20, "the next answer", log)  # noqa: B023
    assert gated_after == [False, True]
    assert log.events("aec_gating")
