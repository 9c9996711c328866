"""Earcons: short sounds for wake, done and error, played through the normal playback path."""

from __future__ import annotations

import logging
import wave

import numpy as np

from ..audio.formats import MODEL_RATE
from ..audio.playback import Player
from ..settings import EarconSettings, packaged_default

log = logging.getLogger("appliance.earcons")

NAMES = ("wake", "done", "error", "timer")


def load_earcon(name: str) -> np.ndarray:
    path = packaged_default(f"earcons/{name}.wav")
    with wave.open(str(path)) as w:
        if w.getframerate() != MODEL_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: earcons must be 24 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


class Earcons:
    def __init__(self, settings: EarconSettings) -> None:
        # A due timer always rings: that sound is the timer's whole point.
        enabled = {"wake": settings.wake, "done": settings.done, "error": settings.error, "timer": True}
        self._sounds: dict[str, bytes] = {}
        for name in NAMES:
            if enabled[name]:
                samples = load_earcon(name).astype(np.float32) * settings.volume
                self._sounds[name] = samples.astype(np.int16).tobytes()

    def enabled(self, name: str) -> bool:
        return name in self._sounds

    def play(self, name: str, player: Player | None) -> float:
        """Queue the sound; returns its length in seconds (0 when off or no player)."""
        sound = self._sounds.get(name)
        if sound is None or player is None:
            return 0.0
        player.enqueue(sound)
        player.end_of_audio()
        return len(sound) / 2 / MODEL_RATE
