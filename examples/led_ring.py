#!/usr/bin/env python3
"""An example peripheral: an LED ring that follows the appliance, using only its device API.

It connects to ws://HOST:PORT/api/events, reads the `hello` message and then one JSON event per
message, and shows the state as a colour and pattern. It needs nothing from the appliance's code:
only `websockets` (and `gpiozero` to drive a real RGB LED). Another process, another language,
another device on the network: the same protocol (see the README, "The device page and API").

  python examples/led_ring.py                                   # print the colours
  python examples/led_ring.py --rgb-pins 5,6,13                 # an RGB LED on those BCM pins
  APPLIANCE_WEB__TOKEN=… python examples/led_ring.py --url ws://kitchen-pi:9090/api/events
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException


@dataclass(frozen=True)
class Look:
    colour: tuple[float, float, float]
    pattern: str  # "off", "on", "blink", "pulse", "spin"


# One look per appliance state; unknown states (a newer appliance) show a dim white.
LOOKS: dict[str, Look] = {
    "idle": Look((0.0, 0.0, 0.0), "off"),
    "waking": Look((1.0, 1.0, 1.0), "spin"),
    "connecting": Look((0.0, 0.0, 1.0), "spin"),
    "listening": Look((0.0, 0.0, 1.0), "on"),
    "thinking": Look((1.0, 0.6, 0.0), "pulse"),
    "speaking": Look((0.0, 1.0, 0.0), "on"),
    "error": Look((1.0, 0.0, 0.0), "blink"),
    "muted": Look((1.0, 0.0, 0.0), "on"),
}
UNKNOWN = Look((0.2, 0.2, 0.2), "on")


class Ring(Protocol):
    def show(self, state: str, look: Look) -> None: ...


class PrintedRing:
    """No hardware: one line per change (what a real ring would show)."""

    def show(self, state: str, look: Look) -> None:
        hex_colour = "".join(f"{round(c * 255):02x}" for c in look.colour)
        print(f"{state}: #{hex_colour} {look.pattern}", flush=True)


class GpioRing:
    """One RGB LED through gpiozero, standing in for a ring's pixels."""

    def __init__(self, pins: list[int]) -> None:
        from gpiozero import RGBLED

        self.led = RGBLED(*pins)

    def show(self, state: str, look: Look) -> None:
        if look.pattern == "off":
            self.led.off()
        elif look.pattern in ("blink", "spin"):
            self.led.blink(on_time=0.15, off_time=0.15, on_color=look.colour)
        elif look.pattern == "pulse":
            self.led.pulse(fade_in_time=0.5, fade_out_time=0.5, on_color=look.colour)
        else:
            self.led.color = look.colour


def handle(message: dict[str, Any], ring: Ring) -> None:
    if message.get("event") in ("hello", "state"):
        state = str(message.get("state"))
        ring.show(state, LOOKS.get(state, UNKNOWN))


async def follow(url: str, token: str | None, ring: Ring) -> None:
    """Follow the appliance for ever, reconnecting (1 s, doubling to 30 s) when it goes away."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    delay = 1.0
    while True:
        try:
            async with connect(url, additional_headers=headers) as ws:
                delay = 1.0
                async for text in ws:
                    handle(json.loads(text), ring)
        except InvalidStatus as exc:
            if exc.response.status_code == 401:
                sys.exit("the appliance wants its token: set APPLIANCE_WEB__TOKEN or --token-file")
            print(f"refused ({exc.response.status_code}); retrying in {delay:.0f} s", file=sys.stderr)
        except (OSError, WebSocketException) as exc:
            print(f"connection lost ({exc.__class__.__name__}); retrying in {delay:.0f} s", file=sys.stderr)
        ring.show("offline", UNKNOWN)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:9090/api/events")
    parser.add_argument("--token-file", help="file holding the appliance's APPLIANCE_WEB__TOKEN")
    parser.add_argument("--rgb-pins", help="BCM pins of an RGB LED, R,G,B (default: print the colours)")
    args = parser.parse_args()
    token = os.environ.get("APPLIANCE_WEB__TOKEN")
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    ring: Ring = GpioRing([int(p) for p in args.rgb_pins.split(",")]) if args.rgb_pins else PrintedRing()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow(args.url, token, ring))


if __name__ == "__main__":
    main()
