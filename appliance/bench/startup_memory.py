"""Where `appliance run`'s memory goes: resident memory by import and by start-up stage.

`python -m appliance.bench.startup_memory REPORT` runs `appliance run` in this process, as the
console script would, with two meters attached from the outside (the appliance's code is not
changed for them):

- imports: a finder first on `sys.meta_path` measures the resident memory each watched package's
  import adds (`PARTS`). A package imported while another is importing is subtracted from the
  outer one, so each part counts only itself; a dependency nobody watches is counted in the part
  that imported it first.
- stages: the resident memory when start-up reaches each point (`STAGES`): settings read, wake word
  loaded, appliance built (its log line `start`; it comes after `heap.release_alsa_probe` and
  `malloc_trim`, so this stage can give memory back), web server up (`http_listen`), both devices
  open (the second `audio_open`), the Agents SDK preloaded in the background (`sdk_loaded`; it may come
  before the devices open).

Each figure is one JSON line appended to REPORT as it is measured: `{"kind": "stage", "stage",
"rss_mb"}`, and every part's `{"kind": "import", "when", "part", "mb", "loaded"}` when the devices
open and when the SDK is loaded (`when`: that stage), and again at exit ("stopped": what a
conversation added). The parent (`process`) reads the idle steady state itself from /proc and
prints the figures. The meters cost what a dict entry and a /proc read cost, at start-up only.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import logging
import os
import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import Any

# Part name -> the modules whose import is that part (dotted names allowed).
PARTS: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "sounddevice": ("sounddevice",),  # its import initialises PortAudio: ALSA's plugins load here
    "litert": ("ai_edge_litert", "tflite_runtime"),
    "wake_word": ("appliance.triggers", "openwakeword", "pyopen_wakeword"),
    "agents_sdk": ("agents",),
    "openai": ("openai",),
    "mcp": ("mcp", "mcp_types"),
    "web": ("starlette", "uvicorn", "sse_starlette"),
    "prometheus": ("prometheus_client",),
    "pydantic": ("pydantic", "pydantic_core", "pydantic_settings"),
}
# In start-up order; `idle` (the steady state) is measured by the parent.
STAGES = ("interpreter", "settings", "wake_word_loaded", "appliance_built", "web_server_up", "devices_opened",
          "sdk_loaded")
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mb() -> float:
    """This process's resident set, from /proc/self/statm (cheap enough to read at every import)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


class Report:
    """Figures appended to a file, one JSON object a line, as they are measured."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
        self._stages: set[str] = set()

    def write(self, **fields: Any) -> None:
        self._file.write(json.dumps(fields) + "\n")

    def stage(self, name: str) -> None:
        """The resident memory now, the first time `name` is reached."""
        if name not in self._stages:
            self._stages.add(name)
            self.write(kind="stage", stage=name, rss_mb=round(rss_mb(), 2))


class _MeasuredLoader(importlib.abc.Loader):
    """The real loader, with `exec_module` measured; anything else is passed through to it."""

    def __init__(self, loader: importlib.abc.Loader, meter: ImportMeter, part: str) -> None:
        self._loader = loader
        self._meter = meter
        self._part = part

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._meter.enter()
        try:
            self._loader.exec_module(module)
        finally:
            self._meter.leave(self._part, module.__name__)
            # The module keeps its own loader, as if the meter had never been there.
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class ImportMeter(importlib.abc.MetaPathFinder):
    """Resident memory added by the import of each part of `parts`, nested parts subtracted."""

    def __init__(self, parts: dict[str, tuple[str, ...]],
                 after_import: dict[str, Callable[[types.ModuleType], None]] | None = None) -> None:
        self._part_of = {module: part for part, modules in parts.items() for module in modules}
        self.parts = {part: 0.0 for part in parts}
        self.loaded: set[str] = set()
        self._after_import = dict(after_import or {})
        self._local = threading.local()  # each thread's stack of (rss at start, nested parts' memory)

    def part_of(self, module: str) -> str | None:
        """The part a module belongs to: its own entry, or its package's (`numpy._core` is numpy)."""
        name = module
        while True:
            part = self._part_of.get(name)
            if part is not None or "." not in name:
                return part
            name = name.rpartition(".")[0]

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        part = self.part_of(fullname)
        if part is None and fullname not in self._after_import:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _MeasuredLoader(spec.loader, self, part or "")
        return spec

    def write(self, report: Report, when: str) -> None:
        for part, mb in self.parts.items():
            report.write(kind="import", when=when, part=part, mb=round(mb, 2), loaded=part in self.loaded)

    def _stack(self) -> list[tuple[float, float]]:
        stack: list[tuple[float, float]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def enter(self) -> None:
        self._stack().append((rss_mb(), 0.0))

    def leave(self, part: str, module: str) -> None:
        stack = self._stack()
        started, nested = stack.pop()
        total = rss_mb() - started
        if part:
            self.parts[part] += total - nested
            self.loaded.add(part)
            if stack:  # the outer import does not count this part's memory again
                outer_start, outer_nested = stack[-1]
                stack[-1] = (outer_start, outer_nested + total)
        hook = self._after_import.pop(module, None)
        if hook is not None:
            hook(sys.modules[module])


class _StageLogHandler(logging.Handler):
    """Stages marked by the appliance's own log lines (`event` field)."""

    def __init__(self, report: Report, meter: ImportMeter) -> None:
        super().__init__(logging.INFO)
        self._report = report
        self._meter = meter
        self._opened = 0

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event == "start":
            self._report.stage("appliance_built")
        elif event == "http_listen":
            self._report.stage("web_server_up")
        elif event == "audio_open":
            self._opened += 1
            if self._opened == 2:
                self._report.stage("devices_opened")
                self._meter.write(self._report, "devices_opened")
        elif event == "sdk_loaded":
            self._report.stage("sdk_loaded")
            self._meter.write(self._report, "sdk_loaded")


def _mark_after(report: Report, stage: str, owner: Any, name: str) -> None:
    """`owner.name(...)` marks `stage` when it first returns."""
    original = getattr(owner, name, None)
    if original is None:  # renamed: the stage is left out and its memory falls to the next one
        return

    def marked(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        report.stage(stage)
        return result

    setattr(owner, name, marked)


def _mark_wake_word(report: Report) -> Callable[[types.ModuleType], None]:
    def hook(module: types.ModuleType) -> None:
        detector = getattr(module, "WakeWordDetector", None)
        if detector is not None:
            _mark_after(report, "wake_word_loaded", detector, "__init__")

    return hook


def main(argv: list[str]) -> int:
    report = Report(argv[0])
    report.stage("interpreter")
    meter = ImportMeter(PARTS, after_import={"appliance.triggers.wakeword": _mark_wake_word(report)})
    sys.meta_path.insert(0, meter)
    logging.getLogger("appliance").addHandler(_StageLogHandler(report, meter))
    try:
        from appliance import cli

        _mark_after(report, "settings", cli, "load_run_settings")
        sys.argv = ["appliance", "run"]
        return cli.main(["run"])
    finally:
        meter.write(report, "stopped")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
