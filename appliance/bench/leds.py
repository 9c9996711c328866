"""`leds` group: CPU of the pixel animation thread.

The animation runs for real (its thread, its frame rate, the APA102 frame encoding) into a transport
that counts bytes instead of clocking them out, so the figure is the appliance's own cost per
pattern; the SPI transfer itself is done by the kernel's driver (hardware SPI) or, for two clocked
pins, by gpiozero's software SPI, which this does not include.
"""

from __future__ import annotations

import math
import time

from ..indicators.pixels import PixelRing
from ..settings import LedSettings
from ..state import State
from .figures import Figure, figure


class _CountingTransport:
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: list[int]) -> None:
        self.bytes += len(data)

    def close(self) -> None:
        pass


def animation_cpu(seconds_per_trial: float = 1.0, trials: int = 5, count: int = 12, fps: int = 30) -> list[Figure]:
    """Process CPU (one core = 100) while each state's pattern runs, with nothing else busy."""
    figures: list[Figure] = []
    for state in (State.THINKING, State.SPEAKING, State.LISTENING):
        transport = _CountingTransport()
        # A speaking level that moves like speech does (4 Hz syllables), so every frame changes.
        ring = PixelRing(LedSettings(type="apa102", count=count, fps=fps),
                         level=lambda: 0.05 + 0.05 * math.sin(2 * math.pi * 4 * time.monotonic()),
                         transport=transport)
        cpu: list[float] = []
        frames: list[float] = []
        try:
            ring.show(state)
            time.sleep(0.2)
            for _ in range(trials):
                frames0, cpu0, wall0 = ring.frames_written, time.process_time(), time.monotonic()
                time.sleep(seconds_per_trial)
                wall = time.monotonic() - wall0
                cpu.append(100 * (time.process_time() - cpu0) / wall)
                frames.append((ring.frames_written - frames0) / wall)
        finally:
            ring.close()
        figures.append(figure("led_animation_cpu_percent", cpu, "%", pattern=str(state), pixels=count, fps=fps,
                              frames_written_per_s=round(sorted(frames)[len(frames) // 2], 1),
                              note="a solid colour is written once; the SPI transfer itself is not included"))
    return figures


if __name__ == "__main__":
    import json

    for fig in animation_cpu():
        print(json.dumps(fig))


def bench_leds() -> list[Figure]:
    return animation_cpu()
