"""A sound card for tests: ALSA `file` PCMs whose files are FIFOs that this module feeds and drains
in real time, so the appliance runs through the real PortAudio/ALSA path with real-time pacing.

ALSA's `file` plugin over the `null` slave runs as fast as the CPU allows; backing its `infile`
and `file` with FIFOs that we write and read at the audio rate paces both directions (a FIFO read
blocks until we write; a write blocks once our small pipe buffer is full). Both FIFOs are opened
O_RDWR here first, so PortAudio's device probe never blocks on a missing peer.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

F_SETPIPE_SZ = 1031
PIPE_BYTES = 4096

ASOUNDRC = """\
pcm.!default {{ type asym playback.pcm "speaker" capture.pcm "mic" }}
pcm.mic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{mic}"
    format "raw"
    hint {{ show on description "test microphone (FIFO)" }}
}}
pcm.speaker {{
    type file
    slave.pcm "null"
    file "{speaker}"
    format "raw"
    hint {{ show on description "test speaker (FIFO)" }}
}}
"""


class FifoSoundCard:
    def __init__(self, root: Path, rate: int = 48000, block_ms: int = 20) -> None:
        self.root = root
        self.home = root / "home"
        self.rate = rate
        self.block = rate * block_ms // 1000
        self.mic_path = root / "mic.fifo"
        self.speaker_path = root / "speaker.fifo"
        self._utterances: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._speaker = bytearray()
        self._speaker_started_at: float | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.mic_blocks_written = 0
        self._generation = 0
        self._echo_gain = 0.0
        self._echo_buf = np.zeros(0, dtype=np.float32)
        self._echo_ir = np.ones(1, dtype=np.float32)
        self._echo_tail = np.zeros(0, dtype=np.float32)
        self.said_at: list[tuple[float, int]] = []  # (monotonic time, sample index in the speaker stream)

    @property
    def env(self) -> dict[str, str]:
        """Environment that makes ALSA (and so PortAudio) see this card."""
        return {"HOME": str(self.home)}

    def open(self) -> FifoSoundCard:
        self.home.mkdir(parents=True, exist_ok=True)
        for path in (self.mic_path, self.speaker_path):
            if not path.exists():
                os.mkfifo(path)
        (self.home / ".asoundrc").write_text(ASOUNDRC.format(mic=self.mic_path, speaker=self.speaker_path))
        self._mic_fd = os.open(self.mic_path, os.O_RDWR | os.O_NONBLOCK)
        self._spk_fd = os.open(self.speaker_path, os.O_RDWR)
        for fd in (self._mic_fd, self._spk_fd):
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
        self._threads = [
            threading.Thread(target=self._feed_mic, name="card-mic", daemon=True),
            threading.Thread(target=self._drain_speaker, name="card-speaker", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def close(self) -> None:
        self._stop.set()
        os.write(self._spk_fd, b"\0\0")  # wake the drain thread
        for t in self._threads:
            t.join(timeout=2)
        os.close(self._mic_fd)
        os.close(self._spk_fd)

    # -- microphone ---------------------------------------------------------------------------
    def say(self, samples: np.ndarray) -> None:
        """Queue int16 samples (at the card's rate) to be heard by the microphone in real time."""
        with self._lock:
            self._utterances.append(np.asarray(samples, dtype=np.int16).copy())

    def saying(self) -> bool:
        with self._lock:
            return bool(self._utterances)

    def wait_said(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.saying():
            if time.monotonic() > deadline:
                raise TimeoutError("microphone audio not consumed in time")
            time.sleep(0.02)

    def set_echo(self, gain: float, delay_ms: int = 30) -> None:
        """Simulate a speaker next to the microphone: the mic also hears what was played,
        `delay_ms` later, scaled by `gain`, through a short decaying room response (0 = off)."""
        with self._lock:
            self._echo_gain = gain
            self._echo_buf = np.zeros(self.rate * delay_ms // 1000, dtype=np.float32)
            taps = self.rate * 8 // 1000
            rng = np.random.default_rng(7)
            self._echo_ir = (rng.standard_normal(taps) * np.exp(-np.arange(taps) / (taps / 4))).astype(np.float32)
            self._echo_ir[0] = 1.0
            self._echo_ir /= np.abs(self._echo_ir).sum()
            self._echo_tail = np.zeros(taps - 1, dtype=np.float32)

    def _echo_block(self) -> np.ndarray | None:
        if not self._echo_gain:
            return None
        take = self._echo_buf[: self.block]
        self._echo_buf = self._echo_buf[self.block :]
        if take.size < self.block:
            take = np.concatenate([take, np.zeros(self.block - take.size, np.float32)])
        wet = np.convolve(np.concatenate([self._echo_tail, take]), self._echo_ir, mode="valid")
        self._echo_tail = np.concatenate([self._echo_tail, take])[-(self._echo_ir.size - 1) :]
        return wet * self._echo_gain

    def _next_mic_block(self) -> tuple[bytes, bool]:
        with self._lock:
            echo = self._echo_block()
            if not self._utterances:
                if echo is None:
                    return bytes(2 * self.block), False
                out = np.zeros(self.block, np.int16)
                speech = False
            else:
                head = self._utterances[0]
                out, rest = head[: self.block], head[self.block :]
                if rest.size:
                    self._utterances[0] = rest
                else:
                    self._utterances.popleft()
                speech = True
        if out.size < self.block:
            out = np.concatenate([out, np.zeros(self.block - out.size, np.int16)])
        if echo is not None:
            out = np.clip(out.astype(np.float32) + echo, -32768, 32767).astype(np.int16)
        return out.tobytes(), speech

    def _feed_mic(self) -> None:
        period = self.block / self.rate
        next_at = time.monotonic()
        pending: bytes | None = None
        generation = self._generation
        while not self._stop.is_set():
            if generation != self._generation:  # reset(): forget the block still waiting
                pending, generation = None, self._generation
            if pending is None:
                pending, speech = self._next_mic_block()
            try:
                os.write(self._mic_fd, pending)
                self.mic_blocks_written += 1
                pending = None
            except BlockingIOError:
                # Nobody reading: silence may be dropped, speech must wait for the reader.
                if not speech:
                    pending = None
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    raise
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()

    # -- speaker ------------------------------------------------------------------------------
    def _drain_speaker(self) -> None:
        started: float | None = None
        received = 0
        while not self._stop.is_set():
            chunk = os.read(self._spk_fd, 2 * self.rate * 5 // 1000)  # 5 ms: a smooth, device-like drain
            if self._stop.is_set():
                break
            now = time.monotonic()
            if started is None:
                started = now
            with self._lock:
                self._speaker.extend(chunk)
                if self._echo_gain and len(chunk) >= 2:
                    heard = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype=np.int16).astype(np.float32)
                    self._echo_buf = np.concatenate([self._echo_buf, heard])[-self.rate :]
            received += len(chunk)
            # Read no faster than a real device would play.
            delay = started + received / 2 / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.2:  # we fell behind (idle reader): restart the clock, no catch-up burst
                started, received = time.monotonic(), 0

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads that feed the microphone and drain the speaker in real time."""
        return list(self._threads)

    def speaker_audio(self) -> np.ndarray:
        with self._lock:
            data = bytes(self._speaker)
        return np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16)

    def reset(self) -> None:
        """Forget queued microphone audio and recorded speaker audio (between tests)."""
        with self._lock:
            self._utterances.clear()
            self._speaker.clear()
            self._generation += 1
            self._echo_gain = 0.0
        try:  # drop what still sits in the microphone pipe
            while os.read(self._mic_fd, PIPE_BYTES):
                pass
        except BlockingIOError:
            pass

    def clear_speaker(self) -> None:
        with self._lock:
            self._speaker.clear()
