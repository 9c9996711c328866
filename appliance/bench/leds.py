"""`leds` group: CPU of the APA102 pixel animation thread per pattern (12 pixels, 30 fps), measured by
indicators/pixels_bench.py into a transport that counts bytes (the SPI transfer is not included)."""

from __future__ import annotations

from .figures import Figure


def bench_leds() -> list[Figure]:
    from ..indicators.pixels_bench import animation_cpu

    return animation_cpu()
