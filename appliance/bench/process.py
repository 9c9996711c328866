"""The real `appliance run` process while idle: resident memory after start-up, where it goes,
and CPU use, on the FIFO sound card (real PortAudio/ALSA, paced in real time), default settings
(wake word with its verifier and self-wake twin, web server on a free loopback port).

`python -m appliance.bench.process` prints one JSON object per figure. The process runs `TRIALS`
times; each figure is the median over them with its spread. Per trial: start-up, 2 s to settle,
the idle RSS and `IDLE_S` of CPU windows, then one conversation (started and stopped through the
device API, against the fake Realtime server) and the RSS once idle again.

The breakdown (`startup_memory` measures it inside the process, the appliance's code unchanged):

- `idle_rss_import_mb` (one line per `part`): what importing that part added, nested parts not
  counted twice; `loaded: false` for a part idle start-up no longer imports.
- `idle_rss_stage_mb` (one line per `stage`, in start-up order): what start-up added between the
  previous stage and this one (`rss_mb`: the total there). `idle` is the steady state.
- `conversation_rss_import_mb`: parts the first conversation imported, and what they added.

So a regression shows which part or stage grew.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from .figures import Figure, figure
from .startup_memory import PARTS

TRIALS = 3
IDLE_S = 8.0
WINDOW_S = 2.0
SETTLE_S = 2.0
# After a conversation: the appliance trims its heap AFTER_CONVERSATION_S after the end (heap.py).
AFTER_CONVERSATION_SETTLE_S = 4.0
TARGET_MB = "<= 150"


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rollup_mb(pid: int) -> dict[str, float]:
    """Anonymous (heap, Python objects, buffers) and file-backed (mapped libraries) resident memory."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        kb[name] = int(rest.split()[0])
    return {"anon_mb": kb.get("Anonymous", 0) / 1024, "file_mb": (kb.get("Rss", 0) - kb.get("Anonymous", 0)) / 1024}


@dataclass
class Trial:
    ready_s: float = 0.0
    idle_mb: float = 0.0
    anon_mb: float = 0.0
    file_mb: float = 0.0
    threads: int = 0
    cpu_percent: list[float] = field(default_factory=list)
    after_conversation_mb: float | None = None
    peak_mb: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    imports: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # when -> part -> figure

    @property
    def idle_imports(self) -> dict[str, dict[str, Any]]:
        """Each part's import figure once start-up is over (the SDK's preload included)."""
        return self.imports.get("sdk_loaded") or self.imports.get("devices_opened") or {}


class _Child:
    """`appliance run` under the memory probe, its JSON log lines read on a thread (a full pipe
    would stall it)."""

    def __init__(self, env: dict[str, str], report: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "appliance.bench.startup_memory", str(report)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                try:
                    self.lines.put(json.loads(line))
                except ValueError:
                    continue

    def wait_for(self, event: str, timeout_s: float = 60.0, count: int = 1) -> dict[str, Any]:
        """The `count`th log line of `event` (lines already read count: the order they come in is
        not the order they are waited for)."""
        deadline = time.monotonic() + timeout_s
        while True:
            seen = [line for line in self.seen if line.get("event") == event]
            if len(seen) >= count:
                return seen[count - 1]
            try:
                self.seen.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise TimeoutError(f"no {event!r} log line within {timeout_s:g} s") from None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # never leave a busy child behind the bench
            self.proc.kill()
            self.proc.wait()


@contextmanager
def _fake_realtime() -> Iterator[str]:
    """The fake Realtime server on its own loop thread; yields its URL."""
    from ..testing.fake_realtime import FakeRealtimeServer

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = FakeRealtimeServer(tool_name=None)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _converse(child: _Child, port: int) -> None:
    """One conversation through the device API: start, wait until the session is open, stop."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/api/events", open_timeout=10) as ws:
        ws.send(json.dumps({"command": "start"}))
        child.wait_for("session_open", timeout_s=120)
        ws.send(json.dumps({"command": "stop"}))
        child.wait_for("conversation_end", timeout_s=30)


def _sdk_imported_at_start(report: Path) -> bool:
    """Did start-up itself import the SDK (an older build, or MCP servers configured)? Then no
    `sdk_loaded` line is coming."""
    for line in report.read_text().splitlines():
        fig = json.loads(line)
        if fig.get("kind") == "import" and fig.get("when") == "devices_opened" and fig.get("part") == "agents_sdk":
            return bool(fig.get("loaded"))
    return False


def _trial(card_env: dict[str, str], realtime_url: str, idle_s: float, window_s: float, workdir: Path) -> Trial:
    report = workdir / f"report-{time.monotonic_ns()}.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    env.update(card_env)
    env.update({
        "OPENAI_API_KEY": "sk-bench", "APPLIANCE_AUDIO__INPUT_DEVICE": "mic",
        "APPLIANCE_AUDIO__OUTPUT_DEVICE": "speaker", "APPLIANCE_AUDIO__INPUT_RATE": "48000",
        "APPLIANCE_AUDIO__OUTPUT_RATE": "48000", "APPLIANCE_LOG__FORMAT": "json",
        "APPLIANCE_HEALTH__ADDRESS": "127.0.0.1:0", "APPLIANCE_REALTIME__URL": realtime_url,
        "APPLIANCE_DATA_DIR": str(workdir / f"data-{report.stem}"),
    })
    trial = Trial()
    started = time.monotonic()
    child = _Child(env, report)
    pid = child.proc.pid
    try:
        port = int(child.wait_for("http_listen")["port"])
        child.wait_for("audio_open", count=2)
        trial.ready_s = time.monotonic() - started
        if not _sdk_imported_at_start(report):
            child.wait_for("sdk_loaded")  # preloaded once listening (conversation/sdk.py)
        time.sleep(SETTLE_S)
        trial.idle_mb = _proc_status_mb(pid, "VmRSS")
        rollup = _rollup_mb(pid)
        trial.anon_mb, trial.file_mb = rollup["anon_mb"], rollup["file_mb"]
        trial.threads = len(os.listdir(f"/proc/{pid}/task"))
        for _ in range(max(1, int(idle_s / window_s))):
            cpu0, t0 = _proc_cpu_s(pid), time.monotonic()
            time.sleep(window_s)
            trial.cpu_percent.append(100 * (_proc_cpu_s(pid) - cpu0) / (time.monotonic() - t0))
        _converse(child, port)
        time.sleep(AFTER_CONVERSATION_SETTLE_S)
        trial.after_conversation_mb = _proc_status_mb(pid, "VmRSS")
        trial.peak_mb = _proc_status_mb(pid, "VmHWM")
    finally:
        child.stop()
    for line in report.read_text().splitlines():
        fig = json.loads(line)
        if fig["kind"] == "stage":
            trial.stages[fig["stage"]] = fig["rss_mb"]
        elif fig["kind"] == "import":
            trial.imports.setdefault(fig["when"], {})[fig["part"]] = fig
    trial.stages["idle"] = trial.idle_mb
    return trial


def breakdown(trials: list[Trial]) -> list[Figure]:
    """The per-import and per-stage figures, medians over `trials`."""
    out: list[Figure] = []
    for part in PARTS:
        at_start = [t.idle_imports.get(part, {}) for t in trials]
        out.append(figure("idle_rss_import_mb", [f.get("mb", 0.0) for f in at_start], "MB", digits=1, part=part,
                          loaded=any(f.get("loaded", False) for f in at_start)))
    for part in PARTS:
        pairs = [(t.idle_imports.get(part, {}), t.imports.get("stopped", {}).get(part, {})) for t in trials]
        if any(stop.get("loaded") and not start.get("loaded") for start, stop in pairs):
            out.append(figure("conversation_rss_import_mb", [stop.get("mb", 0.0) - start.get("mb", 0.0)
                                                             for start, stop in pairs], "MB", digits=1, part=part))
    # Each stage adds what came since the stage before it in that run (in the order reached); a stage
    # a run did not reach is left out, its memory then falls to the next one.
    added: dict[str, list[float]] = {}
    totals: dict[str, list[float]] = {}
    for t in trials:
        before = 0.0
        for stage, rss in t.stages.items():
            added.setdefault(stage, []).append(rss - before)
            totals.setdefault(stage, []).append(rss)
            before = rss
    for stage in added:  # dicts keep the order the first run reached them in
        fig = figure("idle_rss_stage_mb", added[stage], "MB", digits=1, stage=stage)
        fig["rss_mb"] = round(median(totals[stage]), 1)
        out.append(fig)
    return out


def measure(trials: int = TRIALS, idle_s: float = IDLE_S, window_s: float = WINDOW_S) -> list[Figure]:
    from ..testing.fifo_soundcard import FifoSoundCard

    workdir = Path(tempfile.mkdtemp(prefix="appliance-bench-"))
    card = FifoSoundCard(workdir).open()
    try:
        with _fake_realtime() as url:
            runs = [_trial(card.env, url, idle_s, window_s, workdir) for _ in range(trials)]
    finally:
        card.close()
    how = f"{trials} runs of `appliance run`; median of the runs"
    after = [t.after_conversation_mb for t in runs if t.after_conversation_mb is not None]
    return [
        figure("startup_to_listening_s", [t.ready_s for t in runs], "s", digits=2),
        figure("idle_rss_mb", [t.idle_mb for t in runs], "MB", digits=1, target=TARGET_MB, method=how,
               anon_mb=round(median(t.anon_mb for t in runs), 1),
               file_mb=round(median(t.file_mb for t in runs), 1),
               threads=round(median(t.threads for t in runs))),
        *breakdown(runs),
        figure("idle_process_cpu_percent", [c for t in runs for c in t.cpu_percent], "% of one core", digits=2,
               method=f"{window_s:g} s windows of CPU time (/proc/PID/stat), {trials} runs"),
        figure("rss_after_conversation_mb", after, "MB", digits=1,
               note="idle again after one conversation (it imports the Agents SDK)"),
        figure("peak_rss_mb", [t.peak_mb for t in runs], "MB", digits=1, note="VmHWM over start-up, idle and "
               "one conversation"),
    ]


def main() -> int:
    for fig in measure():
        print(json.dumps(fig), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
