"""Push-to-talk turns: which captured audio belongs to a turn (held button) and how much of it was sent.

Turns are [pressed, released] capture-time windows: audio is judged by when it was heard, so the
pre-roll sent after connecting still counts as part of the first turn. Event-loop thread only.
"""

from __future__ import annotations

import time

from ..audio.formats import MODEL_RATE, samples_for_ms

MIN_TURN_MS = 120  # a shorter turn is a tap: the API refuses to commit less than 100 ms


class PushToTalkTurns:
    def __init__(self, held: bool) -> None:
        self.talking = held  # a push-to-talk conversation starts with the button held
        self._turns: list[list[float]] = [[float("-inf"), float("inf")]] if held else []
        self._samples = 0  # sent in the turn under way

    def press(self) -> None:
        """The turn opens at once (so a release that follows before anything else runs closes it)."""
        if not self.talking:
            self.talking = True
            self._turns.append([time.monotonic(), float("inf")])

    def release(self) -> float | None:
        """Close the turn; the time it closed, or None when none was open."""
        if not self.talking:
            return None
        self.talking = False
        now = time.monotonic()
        self._turns[-1][1] = now
        return now

    def admits(self, captured_at: float, samples: int) -> bool:
        """Was this block heard during a turn? Then it is sent, and counted towards the turn."""
        if not any(start <= captured_at <= end for start, end in self._turns[-4:]):
            return False
        self._samples += samples
        return True

    def take(self) -> int:
        """The samples sent in the turn just ended (and start counting the next one)."""
        samples, self._samples = self._samples, 0
        return samples

    @staticmethod
    def is_tap(samples: int) -> bool:
        return samples < samples_for_ms(MIN_TURN_MS, MODEL_RATE)
