"""Latency figures of the conversation audio path, measured against the fake Realtime server on
127.0.0.1 and the FIFO sound card (real PortAudio/ALSA, paced in real time), in this process.

Run as its own process (`python -m appliance.bench_latency`): the sound card must be set up
before PortAudio initialises. Prints one JSON object per figure.

- `wake_to_session_open_ms`: a wake (button press) → the session is open and listening.
- `playback_added_latency_ms`: the server sends the first audio delta → its first sample is handed
  to the output device (the device's own buffer comes on top: `output_device_buffer_ms`).
- `interrupt_flush_ms`: the appliance handles `audio_interrupted` → playback is silent (the next
  block handed to the device is silence); `interrupt_total_ms` counts from the server's
  `speech_started` instead, so it includes the websocket and the SDK.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

Figure = dict[str, Any]


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


async def _measure(card: Any, trials: int) -> list[Figure]:
    import soxr

    from .app import Appliance
    from .settings import Settings, packaged_default
    from .state import State
    from .testing.fake_realtime import FakeRealtimeServer, load_reply_audio
    from .triggers.wakeword import read_wav_16k

    question = soxr.resample(read_wav_16k(packaged_default("samples/hey_jarvis.wav")), 16000, card.rate)
    reply = np.tile(np.frombuffer(load_reply_audio(), dtype=np.int16), 3).tobytes()
    opens, added, flushes, totals = [], [], [], []
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
        period_ms = await _output_period_ms(app)
        for _ in range(trials):
            player = app.player
            assert player is not None
            player.stats.first_audio_at = None
            pressed = time.monotonic()
            app._on_short_press()
            await _wait(lambda: app.state.state == State.LISTENING, 20, "session open")
            opens.append(1000 * (time.monotonic() - pressed))
            sent_before = len(server.sent_at)
            card.say(question)
            await _wait(lambda: player.stats.first_audio_at is not None, 20, "first audio")
            first_delta = next(
                server.sent_at[i] for i in range(sent_before, len(server.sent_at))
                if server.server_events[i]["type"] == "response.output_audio.delta"
            )
            added.append(1000 * (player.stats.first_audio_at - first_delta))  # type: ignore[operator]
            await asyncio.sleep(0.6)
            flushes_before = player.stats.flushes
            sent_before = len(server.sent_at)
            await server.interrupt_now()
            await _wait(lambda: player.stats.flushes > flushes_before
                        and player.stats.last_flush_latency_s is not None
                        and (player.stats.last_flush_silent_at or 0) > server.sent_at[sent_before], 10, "flush")
            flushes.append(1000 * player.stats.last_flush_latency_s)  # type: ignore[operator]
            totals.append(1000 * (player.stats.last_flush_silent_at - server.sent_at[sent_before]))  # type: ignore[operator]
            assert app.conversation is not None
            app.conversation.end("stopped")
            await _wait(lambda: app.state.state == State.IDLE, 10, "idle")
            card.reset()
        device_buffer_ms = 1000 * app.player.latency if app.player else 0.0
        stop.set()
        await task

    def fig(name: str, values: list[float], **extra: Any) -> Figure:
        return {"name": name, "value": round(statistics.median(values), 2), "unit": "ms",
                "max": round(max(values), 2), "trials": len(values), **extra}

    return [
        fig("wake_to_session_open_ms", opens, server="local fake, no handshake delay"),
        fig("playback_added_latency_ms", added, target="<= 30"),
        {"name": "output_device_buffer_ms", "value": round(device_buffer_ms, 2), "unit": "ms"},
        {"name": "output_period_ms", "value": round(period_ms, 2), "unit": "ms",
         "note": "how often the device asks for audio; a flush can only be heard at the next request"},
        fig("interrupt_flush_ms", flushes, target="<= 25"),
        fig("interrupt_total_ms", totals),
    ]


def main(trials: int = 5) -> int:
    from .testing.fifo_soundcard import FifoSoundCard

    if "sounddevice" in sys.modules:
        raise RuntimeError("run bench_latency in a fresh process: PortAudio is already initialised")
    card = FifoSoundCard(Path(tempfile.mkdtemp(prefix="appliance-bench-"))).open()
    os.environ.update(card.env)
    try:
        for figure in asyncio.run(_measure(card, trials)):
            print(json.dumps(figure), flush=True)
    finally:
        card.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
