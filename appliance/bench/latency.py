"""`latency` group: the conversation audio path, measured against the fake Realtime server on
127.0.0.1 and the FIFO sound card (real PortAudio/ALSA, paced in real time), in this process.

Run as its own process (`python -m appliance.bench.latency`): the sound card must be set up
before PortAudio initialises. Prints one JSON object per figure, each the median over the trials
with its spread.

Device-bound figures (they include waiting for the output device's next request, up to one
device period: 40 ms on the test card, so they scatter over that range whatever our code does):

- `wake_to_session_open_ms`: a wake (button press) → the session is open and listening;
  `first_wake_to_session_open_ms` is the first of them (the Agents SDK preloaded before it, as
  `appliance run` does once listening: see `conversation/sdk.py`).
- `playback_added_latency_ms`: the server sends the first audio delta → its first sample is handed
  to the output device (the device's own buffer comes on top: `output_device_buffer_ms`).
- `interrupt_flush_ms`: the appliance handles `audio_interrupted` → playback is silent (the next
  block handed to the device is silence); `interrupt_total_ms` counts from the server's
  `speech_started` instead, so it includes the websocket and the SDK.

The appliance's own share (the same spans minus the wait for the device, so a change in our code
shows up even on a coarse card):

- `playback_own_latency_ms`: the first audio delta is sent (over loopback, so: received) → the
  output callback has written its first sample into the device buffer, minus the time the audio
  sat ready in the player (enough queued to start) until the device's next request
  (`device_wait_ms`, reported alongside).
- `interrupt_own_flush_ms`: `audio_interrupted` is handled (the session calls `Player.flush`) →
  the playback buffer is empty (`flush` returned). `from_speech_started_ms` alongside counts from
  the server's `speech_started`, so it adds the websocket, the SDK and the session's dispatch.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .figures import Figure, figure


async def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.002)


async def _output_period_ms(app: Any) -> float:
    """How often the output device asks for audio: callbacks come in bursts, one burst per
    device period, so the 90th percentile of the gaps between them is the period."""
    await asyncio.sleep(1.0)
    stamps = list(app.player.callback_times)
    gaps = np.diff(stamps) * 1000 if len(stamps) > 2 else np.array([0.0])
    return float(np.percentile(gaps, 90))


class _PlayerProbe:
    """Stamps, from the outside, the moments the player's own code finishes: the first answer
    audio is queued deep enough to start, and a flush has emptied the buffer."""

    def __init__(self, player: Any) -> None:
        self.player = player
        self.ready_at: float | None = None
        self.flush_called_at: float | None = None
        self.flush_done_at: float | None = None
        enqueue: Callable[..., None] = player.enqueue
        flush: Callable[[], int] = player.flush

        def stamped_enqueue(*args: Any, **kwargs: Any) -> None:
            enqueue(*args, **kwargs)
            if self.ready_at is None and player._queued >= player._start_samples:
                self.ready_at = time.monotonic()

        def stamped_flush() -> int:
            called = time.monotonic()
            dropped = flush()
            self.flush_called_at, self.flush_done_at = called, time.monotonic()
            return dropped

        setattr(player, "enqueue", stamped_enqueue)  # noqa: B010 (assigning to a method)
        setattr(player, "flush", stamped_flush)  # noqa: B010

    def reset(self) -> None:
        self.ready_at = self.flush_called_at = self.flush_done_at = None

    def callback_started_before(self, t: float) -> float:
        """When the output callback that ran at `t` started (callbacks stamp their start)."""
        return max(s for s in list(self.player.callback_times) if s <= t)


async def _measure(card: Any, trials: int) -> list[Figure]:
    from ..app import Appliance
    from ..audio.wavfile import read_wav
    from ..conversation.sdk import preload_sdk
    from ..settings import Settings, packaged_default
    from ..state import State
    from ..testing.fake_realtime import FakeRealtimeServer, load_reply_audio

    question = read_wav(packaged_default("samples/hey_jarvis.wav"), card.rate)[0]
    reply = np.tile(np.frombuffer(load_reply_audio(), dtype=np.int16), 3).tobytes()
    opens: list[float] = []
    added: list[float] = []
    own: list[float] = []
    waits: list[float] = []
    flushes: list[float] = []
    totals: list[float] = []
    own_flush: list[float] = []
    own_from_start: list[float] = []
    async with FakeRealtimeServer(reply_audio=reply, tool_name=None) as server:
        settings = Settings(
            openai_api_key="sk-bench",  # type: ignore[arg-type]
            realtime={"url": server.url},  # type: ignore[arg-type]
            audio={"input_device": "mic", "output_device": "speaker", "input_rate": card.rate,  # type: ignore[arg-type]
                   "output_rate": card.rate, "echo": "none"},
            earcons={"wake": False, "done": False, "error": False},  # type: ignore[arg-type]
            session={"idle_timeout_s": 60},  # type: ignore[arg-type]
            health={"enabled": False},  # type: ignore[arg-type]
        )
        app = Appliance(settings, "sk-bench", detector=None)
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        await _wait(lambda: app.audio_ok, 20, "audio streams")
        await preload_sdk(lambda: app.audio_ok)  # as `appliance run` does once listening
        period_ms = await _output_period_ms(app)
        player = app.player
        assert player is not None
        probe = _PlayerProbe(player)
        for _ in range(trials):
            probe.reset()
            player.stats.first_audio_at = None
            pressed = time.monotonic()
            app.buttons.short_press()
            await _wait(lambda: app.state.state == State.LISTENING, 20, "session open")
            opens.append(1000 * (time.monotonic() - pressed))
            sent_before = len(server.sent_at)
            card.say(question)
            await _wait(lambda: player.stats.first_audio_at is not None, 20, "first audio")
            first_delta = next(
                server.sent_at[i] for i in range(sent_before, len(server.sent_at))
                if server.server_events[i]["type"] == "response.output_audio.delta"
            )
            written_at: float = player.stats.first_audio_at  # type: ignore[assignment]
            assert probe.ready_at is not None
            wait = max(0.0, probe.callback_started_before(written_at) - probe.ready_at)
            added.append(1000 * (written_at - first_delta))
            waits.append(1000 * wait)
            own.append(1000 * (written_at - first_delta - wait))
            await asyncio.sleep(0.6)
            flushes_before = player.stats.flushes
            sent_before = len(server.sent_at)
            await server.interrupt_now()
            speech_started = server.sent_at[sent_before]
            await _wait(lambda: player.stats.flushes > flushes_before
                        and player.stats.last_flush_latency_s is not None
                        and (player.stats.last_flush_silent_at or 0) > speech_started, 10, "flush")
            assert probe.flush_called_at is not None and probe.flush_done_at is not None
            flushes.append(1000 * player.stats.last_flush_latency_s)  # type: ignore[operator]
            totals.append(1000 * (player.stats.last_flush_silent_at - speech_started))  # type: ignore[operator]
            own_flush.append(1000 * (probe.flush_done_at - probe.flush_called_at))
            own_from_start.append(1000 * (probe.flush_done_at - speech_started))
            assert app.conversation is not None
            app.conversation.end("stopped")
            await _wait(lambda: app.state.state == State.IDLE, 10, "idle")
            card.reset()
        device_buffer_ms = 1000 * player.latency
        stop.set()
        await task

    def ms(name: str, values: list[float], digits: int = 2, **extra: Any) -> Figure:
        return figure(name, values, "ms", digits=digits, max=round(max(values), digits), **extra)

    return [
        ms("wake_to_session_open_ms", opens, server="local fake, no handshake delay"),
        figure("first_wake_to_session_open_ms", opens[0], "ms", digits=2,
               note="the process's first conversation (the SDK preloaded as `appliance run` does)"),
        ms("playback_added_latency_ms", added, target="<= 30", bound="device: includes device_wait_ms"),
        ms("playback_own_latency_ms", own, device_wait_ms=round(float(np.median(waits)), 2),
           note="first delta sent -> written into the device buffer, minus the wait for the device"),
        figure("output_device_buffer_ms", device_buffer_ms, "ms", digits=2),
        figure("output_period_ms", period_ms, "ms", digits=2,
               note="how often the device asks for audio; a flush can only be heard at the next request"),
        ms("interrupt_flush_ms", flushes, target="<= 25", bound="device: waits for the next request"),
        ms("interrupt_total_ms", totals),
        ms("interrupt_own_flush_ms", own_flush, digits=3,
           from_speech_started_ms=round(float(np.median(own_from_start)), 2),
           note="audio_interrupted handled (Player.flush called) -> playback buffer empty"),
    ]


def main(trials: int = 20) -> int:
    from ..testing.fifo_soundcard import FifoSoundCard

    if "sounddevice" in sys.modules:
        raise RuntimeError("run appliance.bench.latency in a fresh process: PortAudio is already initialised")
    card = FifoSoundCard(Path(tempfile.mkdtemp(prefix="appliance-bench-"))).open()
    os.environ.update(card.env)
    try:
        for fig in asyncio.run(_measure(card, trials)):
            print(json.dumps(fig), flush=True)
    finally:
        card.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
