"""When may the echo canceller's output reach the model? Only once it has been seen to cancel.

A fixed warm-up (2 s of the agent's speech) was not enough: when the echo lags the speaker reference
by more than the canceller's tail (a device whose output latency is longer than expected, a playback
path that buffers more on one open than on another), the canceller never converges, and the agent's
own voice reached the model right after the warm-up, and interrupted the answer.

So the model-bound audio stays muted while the agent speaks until both hold: the warm-up has passed,
and over the last second of the agent's speech the canceller either took the echo down by
`CONVERGED_ERLE_DB` or left only a quiet residual without adding to it (a weak echo has little to
cancel; a canceller that cannot model the echo makes the signal louder, not quieter). Until then
`echo = "aec"` behaves like `gate` (the conversation gates on `ready`); the wake word and the button
still interrupt. Still not converged after `SLOW_WARN_S` of the agent's speech: one warning, with
the settings that fix a long echo lag.

ERLE alone is relative: 15 dB off a loud echo (a speaker next to the mic, -9 dB) still left 20-ms
bursts of speech level, and once trusted nothing was measured any more, so the model heard them and
the answer interrupted itself on every restart (issue 18 item 8). So trust also needs no loud
residual frame (`echo_leak.LOUD_FRAME_RMS`) over the window, and the verdict is kept up while
trusted: the echo's remnant coming back or an echo no longer cancelled (`echo_leak.judge`, which
tells them from a person talking over the answer) or a canceller making it louder withdraws the
trust (`withdrawn`), and it learns again as at start.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .echo_leak import LOUD_FRAME_RMS, loud_frame_energies, loudest_frame_rms, ratio_db
from .formats import MODEL_RATE

FRAME = MODEL_RATE // 50

WARMUP_S = 2.0  # far-end speech the canceller needs, at least, before it is trusted
CONVERGED_ERLE_DB = 10.0  # echo return loss enhancement that counts as cancelling
QUIET_RESIDUAL_RMS = 150.0  # a residual this quiet is harmless whatever the ERLE (well under speech)
WINDOW_S = 1.0  # how much of the agent's most recent speech the verdict is taken over
NOT_WORSE_DB = -3.0  # a quiet residual counts only if the canceller is not adding to it (diverged)
SLOW_WARN_S = 10.0
RECENT_S = 0.2  # a loud residual is judged over this much of the latest speech (ten frames)


class EchoLearning:
    """Per block of agent speech (the reference is active): the microphone before and after the
    canceller. Used by the microphone worker thread only."""

    def __init__(self) -> None:
        self.learned_s = 0.0  # agent speech the canceller has learned from since the last (re)start
        self.ready = False
        self.slow_reported = False
        # (mic energy, residual energy, samples, loudest residual frame's RMS, and the mic's and the
        # residual's energy over the residual's loud frames)
        self._window: deque[tuple[float, float, int, float, float, float]] = deque()
        self._previous_mic = np.zeros(0, dtype=np.int16)
        self._window_samples = 0
        self.withdrawn = 0  # times the trust was withdrawn (the echo leaked through again)

    def restart(self) -> None:
        """The echo path moved (an xrun): learn again from scratch."""
        self.learned_s = 0.0
        self.ready = False
        self.slow_reported = False
        self._window.clear()
        self._window_samples = 0
        self._previous_mic = np.zeros(0, dtype=np.int16)

    def observe(self, mic: np.ndarray, residual: np.ndarray) -> None:
        """One block captured while the agent spoke: `mic` before the canceller, `residual` after.
        Once trusted, the pipeline asks `echo_leak.judge` about every loud residual block."""
        if mic.size == 0:
            return
        if not self.ready:  # once trusted, it stays what the trust took
            self.learned_s += mic.size / MODEL_RATE
        loud_mic, loud_residual = loud_frame_energies(np.concatenate([self._previous_mic, mic]), residual)
        self._previous_mic = mic[-FRAME:]
        self._window.append((_energy(mic), _energy(residual), mic.size, loudest_frame_rms(residual),
                             loud_mic, loud_residual))
        self._window_samples += mic.size
        while self._window_samples - self._window[0][2] >= WINDOW_S * MODEL_RATE:
            self._window_samples -= self._window.popleft()[2]
        if not self.ready:
            self.ready = self.learned_s >= WARMUP_S and self._cancelling() and self.loudest_rms <= LOUD_FRAME_RMS

    def withdraw(self) -> None:
        """The echo leaks through the trusted canceller: mute and learn again, as at start."""
        self.restart()
        self.withdrawn += 1

    @property
    def loud_while_trusted(self) -> bool:
        """Trusted, and a loud residual: a person over the answer, or the echo getting through (its
        remnant, or an echo the canceller no longer cancels); `echo_leak.judge` tells them apart."""
        return self.ready and self.loudest_rms > LOUD_FRAME_RMS

    def _cancelling(self) -> bool:
        erle = self.erle_db
        return erle >= CONVERGED_ERLE_DB or (self.residual_rms <= QUIET_RESIDUAL_RMS and erle >= NOT_WORSE_DB)

    @property
    def recent_loud_erle_db(self) -> float:
        """ERLE over the loud residual frames of the last `RECENT_S` (100 dB: none)."""
        mic = residual = 0.0
        samples = 0
        for entry in reversed(self._window):
            if samples >= RECENT_S * MODEL_RATE:
                break
            mic, residual, samples = mic + entry[4], residual + entry[5], samples + entry[2]
        return ratio_db(mic, residual) if residual > 0 else 100.0

    @property
    def loudest_rms(self) -> float:
        """The loudest 20-ms residual frame over the window."""
        return max((e[3] for e in self._window), default=0.0)

    @property
    def erle_db(self) -> float:
        """How far the canceller took the echo down over the window (dB)."""
        mic = sum(e[0] for e in self._window)
        residual = sum(e[1] for e in self._window)
        return float(10 * np.log10(max(mic, 1.0) / max(residual, 1.0)))

    @property
    def residual_rms(self) -> float:
        return float(np.sqrt(sum(e[1] for e in self._window) / max(self._window_samples, 1)))

    def too_slow(self) -> bool:
        """True once per learning, when it has taken `SLOW_WARN_S` of agent speech without converging."""
        if self.ready or self.slow_reported or self.learned_s < SLOW_WARN_S:
            return False
        self.slow_reported = True
        return True


def _energy(x: np.ndarray) -> float:
    return float(np.sum(x.astype(np.float64) ** 2))
