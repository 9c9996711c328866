"""The real `appliance run` process while idle: resident memory after start-up and CPU use,
on the FIFO sound card (real PortAudio/ALSA, paced in real time), default wake-word model.

`python -m appliance.bench.process` prints one JSON object per figure. The CPU figure is the
median over two-second windows of the idle period, with their spread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .figures import figure


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(idle_s: float = 20.0, window_s: float = 2.0) -> int:
    from ..testing.fifo_soundcard import FifoSoundCard

    card = FifoSoundCard(Path(tempfile.mkdtemp(prefix="appliance-bench-"))).open()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    env.update(card.env)
    env.update({
        "OPENAI_API_KEY": "sk-bench", "APPLIANCE_AUDIO__INPUT_DEVICE": "mic",
        "APPLIANCE_AUDIO__OUTPUT_DEVICE": "speaker", "APPLIANCE_AUDIO__INPUT_RATE": "48000",
        "APPLIANCE_AUDIO__OUTPUT_RATE": "48000", "APPLIANCE_LOG__FORMAT": "json",
        "APPLIANCE_HEALTH__ENABLED": "false", "APPLIANCE_REALTIME__URL": "ws://127.0.0.1:9/v1/realtime",
    })
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        opened = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            if '"audio_open"' in line:
                opened += 1
                if opened == 2:
                    break
        ready_s = time.monotonic() - started
        time.sleep(2.0)  # settle
        rss = _proc_rss_mb(proc.pid)
        cpu_percent: list[float] = []
        for _ in range(int(idle_s / window_s)):
            cpu0, t0 = _proc_cpu_s(proc.pid), time.monotonic()
            time.sleep(window_s)
            cpu_percent.append(100 * (_proc_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0))
        rss_after = _proc_rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # never leave a busy child behind the bench
            proc.kill()
            proc.wait()
        card.close()
    for fig in (
        figure("startup_to_listening_s", ready_s, "s", digits=2),
        figure("idle_rss_mb", rss, "MB", digits=1, target="<= 180", after_s=round(idle_s),
               rss_after_mb=round(rss_after, 1)),
        figure("idle_process_cpu_percent", cpu_percent, "% of one core", digits=2,
               method=f"{window_s:g} s windows of CPU time (/proc/PID/stat)"),
    ):
        print(json.dumps(fig), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
