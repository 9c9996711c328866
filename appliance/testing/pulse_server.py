"""A real-time-paced sound server for tests and `appliance bench`: a private PulseAudio daemon with
two null sinks, reached by the appliance through ALSA's `pulse` plugin (the `sounddevice` backend)
or directly (the `pulse` backend). Needs Debian's `pulseaudio`, `pulseaudio-utils` and
`libasound2-plugins` (scripts/setup.sh --test).

The microphone is `mic_sink.monitor`; a monitor only produces frames while something plays into
its sink, so a silence stream plays into it all the time and utterances are mixed in with `paplay`.
What the appliance plays goes to `speaker_sink`, recorded from its monitor with `parec`.
Everything runs on the daemon's clock, like a real device.

`set_echo` loops the speaker back into the microphone (PulseAudio's own `module-loopback`, on the
same clock), as a speaker next to the mic does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

import numpy as np

RATE = 48000

DEFAULT_PA = """\
load-module module-native-protocol-unix socket={socket}
load-module module-null-sink sink_name=mic_sink rate={rate} channels=1
load-module module-null-sink sink_name=speaker_sink rate={rate} channels=1
"""

ASOUNDRC = """\
pcm.!default { type pulse }
ctl.!default { type pulse }
pcm.mic { type pulse device "mic_sink.monitor" hint { show on description "paced microphone" } }
pcm.speaker { type pulse device "speaker_sink" hint { show on description "paced speaker" } }
"""


def available() -> bool:
    return all(shutil.which(tool) for tool in ("pulseaudio", "pacat", "parec", "paplay"))


class PulseSoundServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.runtime = root / "run"
        self.socket = root / "native"
        self.recording = root / "speaker.raw"
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(self.runtime),
            "XDG_RUNTIME_DIR": str(self.runtime),
        }

    def _spawn(self, *cmd: str, stdout: int | IO[bytes] = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env}
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.DEVNULL)
        self._procs.append(proc)
        return proc

    def start(self) -> PulseSoundServer:
        for d in (self.home, self.runtime):
            d.mkdir(parents=True, exist_ok=True)
        (self.home / ".asoundrc").write_text(ASOUNDRC)
        config = self.root / "default.pa"
        config.write_text(DEFAULT_PA.format(socket=self.socket, rate=RATE))
        self._spawn("pulseaudio", "-n", "-F", str(config), "--daemonize=no", "--exit-idle-time=-1",
                    "--disallow-exit", "--use-pid-file=no", "--log-target=stderr")
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("PulseAudio did not start")
            time.sleep(0.05)
        raw = ("--rate", str(RATE), "--channels=1", "--format=s16le")
        self._spawn("pacat", "--playback", "-d", "mic_sink", *raw, "/dev/zero")
        self._recorder = self._spawn("parec", "-d", "speaker_sink.monitor", *raw,
                                     stdout=self.recording.open("wb"))
        return self

    def set_echo(self, gain_db: float, delay_ms: int) -> None:
        """Feed what the speaker plays back into the microphone, `delay_ms` later at `gain_db`.

        The delay is the loopback's latency target (PulseAudio keeps it by adjusting the rate a
        little, as two real clocks would need); the appliance's own buffering comes on top of it."""
        self._pactl("load-module", "module-loopback", "source=speaker_sink.monitor", "sink=mic_sink",
                    f"latency_msec={delay_ms}", "source_dont_move=true", "sink_dont_move=true",
                    "remix=false")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for line in self._pactl("list", "short", "sink-inputs").splitlines():
                index, *_rest = line.split("\t")
                if "loopback" in line:  # the driver column: module-loopback.c
                    self._pactl("set-sink-input-volume", index, f"{gain_db}dB")
                    return
            time.sleep(0.05)
        raise RuntimeError("the echo loop's sink input did not appear")

    def _pactl(self, *args: str) -> str:
        env = {**os.environ, **self.env}
        return subprocess.run(["pactl", *args], env=env, check=True, capture_output=True, text=True,
                              timeout=10).stdout

    def say(self, wav: Path) -> subprocess.Popen[bytes]:
        """Play a WAV file into the microphone (mixed over the silence), on the server's clock."""
        return self._spawn("paplay", "-d", "mic_sink", str(wav))

    def speaker_audio(self) -> np.ndarray:
        data = self.recording.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._procs.clear()
