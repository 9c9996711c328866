"""microWakeWord inside the running appliance (in-process, real PortAudio/ALSA through the FIFO card,
real pymicro-wakeword, real SDK, fake server): "okay nabu" wakes it with the same `wake` event and
metric, and an answer that says "okay nabu" plays to the end, because the speaker's output is scored
by a twin on the same engine (appliance/triggers/self_wake.py).

The answer is tests/fixtures/okay_nabu/reply/reply_says_okay_nabu_24k.wav (scripts/make_wake_fixtures.sh:
"I'm your kitchen helper. Whenever you need me, just say: okay nabu. And I will listen.").
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance.app import Appliance
from appliance.testing.fake_realtime import FakeRealtimeServer
from appliance.testing.fifo_soundcard import FifoSoundCard
from appliance.triggers.wake_scan import scan_file
from appliance.triggers.wakeword import WakeWordDetector
from tests.audio_compare import FIXTURES, read_wav
from tests.inproc import make_settings, running, wait_until
from tests.test_self_wake import assert_played_to_the_end_ignoring_itself, play_answer_over_echo

pytestmark = pytest.mark.e2e

SAYS_NABU = FIXTURES / "okay_nabu" / "reply" / "reply_says_okay_nabu_24k.wav"
NABU = FIXTURES / "okay_nabu" / "en-us_160.wav"


def detector() -> WakeWordDetector:
    return WakeWordDetector(["micro:okay_nabu"], refractory_s=2.0)


def settings_for(url: str, mode: str) -> object:
    return make_settings(
        realtime={"url": url},
        audio={"echo": mode},
        button={"pin": 17, "bounce_s": 0},
        earcons={"wake": False, "done": False, "error": False},
        session={"idle_timeout_s": 30},
        wake={"models": ["micro:okay_nabu"]},
    )


def test_the_fixture_says_okay_nabu() -> None:
    assert scan_file(SAYS_NABU, detector()).woke("micro:okay_nabu")


async def test_okay_nabu_wakes_it_with_the_same_event_and_metric(card: FifoSoundCard) -> None:
    async with FakeRealtimeServer() as server:
        app = Appliance(make_settings(realtime={"url": server.url}, wake={"models": ["micro:okay_nabu"]}),  # type: ignore[arg-type]
                        "sk-test", detector())
        async with running(app) as log:
            await wait_until(lambda: app.audio_ok, 10, "streams", log)
            card.say(np.concatenate([read_wav(NABU, card.rate), np.zeros(card.rate, np.int16)]))
            await wait_until(lambda: bool(log.events("wake")), 15, "a wake", log)
            await wait_until(lambda: bool(server.connections), 10, "a session", log)
    wake = log.events("wake")[0]
    assert wake["source"] == "wakeword" and wake["model"] == "micro:okay_nabu"
    assert wake["score"] >= 0.85
    assert app.telemetry.registry.get_sample_value("appliance_wakes_total", {"source": "wakeword"}) == 1


@pytest.mark.parametrize("mode", ["gate", "aec"])
async def test_an_answer_that_says_okay_nabu_plays_to_the_end(
    card: FifoSoundCard, mock_pins: object, mode: str
) -> None:
    answer = await play_answer_over_echo(card, mock_pins, SAYS_NABU, lambda url: settings_for(url, mode), detector())
    assert_played_to_the_end_ignoring_itself(answer)
