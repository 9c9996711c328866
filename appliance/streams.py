"""The appliance's audio as one unit: the microphone and speaker streams and the microphone pipeline,
opened and closed together (blocking PortAudio calls through `AudioControl`, off the event loop),
the speaker watched for stalls, and counters kept across reopens (Prometheus counters only go up).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .audio.aec import EchoCanceller
from .audio.backends import AudioBackend, backend_for
from .audio.capture import MicStream
from .audio.control import AudioControl
from .audio.devices import AudioDeviceError, find_device, pick_rate, rescan
from .audio.formats import MODEL_RATE
from .audio.pipeline import MicPipeline, WakeDetection, WakeDetector
from .audio.playback import Player
from .audio.reference import ReferenceBuffer
from .events import ErrorRaised, EventBus
from .settings import Settings
from .triggers.self_wake import PlayedWakeFilter, played_wake_filter

OUTPUT_STALL_S = 3.0  # an output stream that asks for no audio this long has stalled


def volume_gain(percent: int) -> float:
    """Playback gain for a volume in percent: squared, so 50 % sounds about half as loud (-12 dB)."""
    return (max(0, min(100, percent)) / 100) ** 2


class AudioStreams:
    def __init__(
        self,
        settings: Settings,
        detector: WakeDetector | None,
        events: EventBus,
        *,
        on_wake: Callable[[WakeDetection], None],
        on_stalled: Callable[[str], None],
        volume: Callable[[], int],
    ) -> None:
        self.settings = settings
        self.detector = detector
        self.events = events
        self._on_wake = on_wake
        self._on_stalled = on_stalled
        self._volume = volume
        self.mic: MicStream | None = None
        self.player: Player | None = None
        self.pipeline: MicPipeline | None = None
        self.control = AudioControl()
        self.opened_at = 0.0
        self._totals = {"overruns": 0, "underruns": 0, "dropped_blocks": 0, "output_underflows": 0}
        # A speaker next to the mic (gate, aec): a twin of the detector scores what the speaker plays, so
        # the wake word ignores the appliance's own voice (triggers/self_wake.py). Made once, kept across reopens.
        self._played_wakes: PlayedWakeFilter | None = (
            played_wake_filter(detector) if settings.audio.echo != "none" else None
        )

    @property
    def ok(self) -> bool:
        return bool(self.mic and self.mic.active and self.player and self.player.active)

    def _backend(self) -> AudioBackend:
        return backend_for(self.settings.audio)

    def _open_devices(self) -> tuple[MicStream, Player]:
        """Find and start both streams (blocking PortAudio calls: run through `self.control`)."""
        a = self.settings.audio
        backend = self._backend()
        in_dev = find_device(a.input_device, "input", backend)
        out_dev = find_device(a.output_device, "output", backend)
        in_rate = pick_rate(in_dev, "input", channels=a.input_channel + 1, forced=a.input_rate, backend=backend)
        out_rate = pick_rate(out_dev, "output", forced=a.output_rate, backend=backend)
        player = Player(out_dev, out_rate, a.output_block_ms, a.playback_start_ms, a.playback_max_s,
                        backend=backend)
        player.gain = volume_gain(self._volume())
        player.start()
        mic = MicStream(in_dev, in_rate, a.input_channel, a.block_ms, backend=backend)
        try:
            mic.start()
        except BaseException:
            player.stop()
            raise
        return mic, player

    @staticmethod
    def _stop_devices(devices: tuple[MicStream, Player]) -> None:
        for stream in devices:
            stream.stop()

    async def open(self, loop: asyncio.AbstractEventLoop) -> None:
        mic, player = await self.control.call("opening the audio devices", self._open_devices,
                                              discard=self._stop_devices)
        self.mic, self.player = mic, player
        a = self.settings.audio
        self.pipeline = MicPipeline(
            mic,
            loop,
            self.detector,
            on_wake=self._on_wake,
            on_stalled=self._on_stalled,
            lookback_ms=self.settings.wake.preroll_lookback_ms,
            publish=self.events.publish,
        )
        if a.echo == "aec":
            # Reference: what the speaker played, read back aligned with the microphone.
            reference = ReferenceBuffer(
                capacity=player.rate * 2, delay=int(player.rate * a.aec_reference_delay_ms / 1000)
            )
            player.reference = reference
            self.pipeline.cancel_echo(EchoCanceller(MODEL_RATE, tail_ms=a.aec_tail_ms), reference, player.rate)
        if self._played_wakes is not None:
            player.played = self._played_wakes.listen_to(player.rate)
            self.pipeline.ignore_played_wakes(self._played_wakes)
        self.pipeline.start()
        self.opened_at = time.monotonic()

    async def rescan(self) -> None:
        await self.control.call("rescanning the audio devices", lambda: rescan(self._backend()))

    def speaker_level(self) -> float:
        """What the speaker plays now (for the pixels' speaking glow); read from the pixels' thread."""
        player = self.player
        return player.level if player is not None else 0.0

    def set_volume(self, percent: int) -> None:
        if self.player is not None:
            self.player.gain = volume_gain(percent)

    async def close(self) -> None:
        """Detach the streams at once (the loop stops using them), then close them off the loop."""
        pipeline, mic, player = self.pipeline, self.mic, self.player
        self.pipeline, self.mic, self.player = None, None, None
        # Prometheus counters only go up: keep what the closed streams counted.
        for name, value in self._stream_stats(mic, player).items():
            self._totals[name] += value
        if pipeline is None and mic is None and player is None:
            return

        def close() -> None:
            if pipeline is not None:
                pipeline.stop()
            for stream in (mic, player):
                if stream is not None:
                    stream.stop()

        try:
            await self.control.call("closing the audio devices", close)
        except AudioDeviceError as exc:
            self.events.publish(ErrorRaised(kind="audio_device", text=f"audio devices not closed cleanly: {exc}"))

    def output_stall(self) -> str | None:
        """The speaker can vanish too: why a stopped output stream, or one that stopped asking for
        audio, is an audio fault like a silent microphone (None while it plays)."""
        player = self.player
        if player is None:
            return None
        if not player.active:
            return "output stream stopped"
        if time.monotonic() - player.last_callback_at > OUTPUT_STALL_S:
            return f"output device asked for no audio for {OUTPUT_STALL_S:.0f} s"
        return None

    @staticmethod
    def _stream_stats(mic: MicStream | None, player: Player | None) -> dict[str, int]:
        return {
            "overruns": mic.stats.overflows if mic is not None else 0,
            "dropped_blocks": mic.stats.dropped_blocks if mic is not None else 0,
            "underruns": player.stats.underruns if player is not None else 0,
            "output_underflows": player.stats.device_underflows if player is not None else 0,
        }

    def stats(self) -> dict[str, int]:
        """Audio counters over the process's life (streams that were closed included)."""
        current = self._stream_stats(self.mic, self.player)
        return {name: self._totals[name] + current[name] for name in current}
