"""A stdio MCP server's stderr as log lines naming the server.

Without this the server process inherits the appliance's stderr, and whatever it prints (a token in a
traceback, its own debug output) bypasses the JSON log and the secret filter. Here the process gets
the write end of a pipe; a thread reads it line by line and logs each line (`mcp_stderr`, with the
server's name) through the same handler and filter as every other record. A burst of lines is let
through, then a steady trickle; lines beyond that are counted and the count is logged, so a chatty
or looping server cannot flood the log.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TextIO

log = logging.getLogger("appliance.mcp")

LINE_BYTES = 1000  # longer lines are cut (at a space, so no token is logged in part)
BURST_LINES = 20
LINES_PER_S = 2.0


class LineBudget:
    """A token bucket: `burst` lines at once, then `per_s` lines a second."""

    def __init__(self, burst: int = BURST_LINES, per_s: float = LINES_PER_S) -> None:
        self._burst = float(burst)
        self._per_s = per_s
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._per_s)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


def _cut(raw: bytes, complete: bool) -> str:
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    if complete:
        return text.rstrip()
    words = text.rsplit(None, 1)
    head = words[0] if len(words) == 2 else ""
    return f"{head} … (line cut)".lstrip()


class ServerStderr:
    """One server process's stderr. Give `errlog` to the process, then call `spawned()` (or `close()`
    when the spawn failed): the reader stops when every holder of the write end has closed it."""

    def __init__(self, server: str, budget: LineBudget | None = None) -> None:
        self.server = server
        read_fd, write_fd = os.pipe()
        self.errlog: TextIO = os.fdopen(write_fd, "w", encoding="utf-8")
        self._pipe = os.fdopen(read_fd, "rb")
        self._budget = budget or LineBudget()
        self._dropped = 0
        self._thread = threading.Thread(target=self._read, name=f"mcp-stderr-{server}", daemon=True)
        self._thread.start()

    def spawned(self) -> None:
        """The process holds its own copy of the write end: ours is closed, so its exit ends the reader."""
        self.close()

    def close(self) -> None:
        if not self.errlog.closed:
            self.errlog.close()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _read(self) -> None:
        with self._pipe:
            while chunk := self._pipe.readline(LINE_BYTES):
                complete = chunk.endswith(b"\n")
                while not complete:  # the rest of an over-long line is dropped, not logged as lines of its own
                    rest = self._pipe.readline(LINE_BYTES)
                    if not rest or rest.endswith(b"\n"):
                        break
                line = _cut(chunk, complete)
                if line:
                    self._emit(line)
        self._report_dropped()

    def _emit(self, line: str) -> None:
        if not self._budget.take():
            self._dropped += 1
            return
        self._report_dropped()
        log.info("MCP server %s: %s", self.server, line, extra={"event": "mcp_stderr", "server": self.server})

    def _report_dropped(self) -> None:
        if self._dropped:
            log.warning("MCP server %s: %d stderr lines not logged (too many)", self.server, self._dropped,
                        extra={"event": "mcp_stderr_dropped", "server": self.server, "lines": self._dropped})
            self._dropped = 0
