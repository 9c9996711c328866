"""The real `appliance run` process while idle: resident memory after start-up and CPU use,
on the FIFO sound card (real PortAudio/ALSA, paced in real time), default wake-word model.

`python -m appliance.bench_process` prints one JSON object per figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(idle_s: float = 20.0) -> int:
    from .testing.fifo_soundcard import FifoSoundCard

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
        cpu0, t0 = _proc_cpu_s(proc.pid), time.monotonic()
        time.sleep(idle_s)
        cpu = (_proc_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0)
        rss_after = _proc_rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # never leave a busy child behind the bench
            proc.kill()
            proc.wait()
        card.close()
    for figure in (
        {"name": "startup_to_listening_s", "value": round(ready_s, 2), "unit": "s"},
        {"name": "idle_rss_mb", "value": round(rss, 1), "unit": "MB", "target": "<= 180",
         "after_s": round(idle_s, 0), "rss_after_mb": round(rss_after, 1)},
        {"name": "idle_process_cpu_percent", "value": round(100 * cpu, 2), "unit": "% of one core"},
    ):
        print(json.dumps(figure), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
