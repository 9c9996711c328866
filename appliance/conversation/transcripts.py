"""Conversation transcripts: one JSON-lines file per conversation in `<data dir>/transcripts/`.

Off by default (`APPLIANCE_TRANSCRIPTS__ENABLED`). A subscriber of the event stream: it writes the
person's transcribed speech, the agent's spoken answers, tool calls with their arguments and
results, handoffs, tripped guardrails and the end reason, each with a timestamp. It writes event
fields only, never settings, so the API key and MCP tokens cannot reach it. Files older than
`retention_days`, and the oldest beyond `retention_mb` in all, are deleted after each conversation.
A data directory that refuses writes (read-only, full) costs that conversation's transcript, with
one warning; the next conversation tries again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from ..events import (
    ApplianceEvent,
    ConversationEnded,
    ErrorRaised,
    GuardrailTripped,
    HandedOff,
    SessionOpened,
    ToolCalled,
    TranscriptLine,
    Wake,
)
from ..redaction import mask

log = logging.getLogger("appliance.transcripts")

DIR_NAME = "transcripts"
_KEPT = (TranscriptLine, ToolCalled, HandedOff, GuardrailTripped, SessionOpened)


class TranscriptWriter:
    def __init__(self, data_dir: Path, retention_days: float, retention_mb: float) -> None:
        self.directory = data_dir / DIR_NAME
        self._retention_s = retention_days * 86400
        self._retention_bytes = int(retention_mb * 1024 * 1024)
        self._path: Path | None = None

    @property
    def current(self) -> Path | None:
        return self._path

    def on_event(self, event: ApplianceEvent) -> None:
        if isinstance(event, Wake) and not event.barge_in:
            if self._start():
                self._write(event)
        elif self._path is None:
            return
        elif isinstance(event, _KEPT) or isinstance(event, ErrorRaised) and event.kind == "store":
            self._write(event)  # a store fault (an unsaved mute) does not end the conversation
        elif isinstance(event, ConversationEnded | ErrorRaised):
            self._write(event)
            self._path = None
            self.prune()

    def _start(self) -> bool:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        self._path = self.directory / f"{stamp}.jsonl"
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            self._failed(exc)
            return False
        return True

    def _write(self, event: ApplianceEvent) -> None:
        assert self._path is not None
        line: dict[str, Any] = {"t": dt.datetime.now().astimezone().isoformat(timespec="milliseconds"),
                                **event.as_dict()}
        if isinstance(event, ErrorRaised):
            line["text"] = event.text
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                # Masked as the log is: a tool's result or error text may carry a registered secret.
                f.write(json.dumps(mask(line), ensure_ascii=False, default=str) + "\n")
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        log.warning("transcript %s not written: %s", self._path, exc.strerror,
                    extra={"event": "transcript_write_failed"})
        self._path = None

    def prune(self, now: float | None = None) -> list[Path]:
        """Delete transcripts past the age limit, then the oldest until the rest fit the size limit."""
        try:
            return self._prune(time.time() if now is None else now)
        except OSError as exc:  # a read-only directory: old files stay until it is writable again
            log.warning("old transcripts not deleted: %s", exc.strerror, extra={"event": "transcript_prune_failed"})
            return []

    def _prune(self, now: float) -> list[Path]:
        files = sorted(self.directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        removed: list[Path] = []
        for path in files:
            if now - path.stat().st_mtime > self._retention_s:
                removed.append(path)
        kept = [p for p in files if p not in removed]
        total = sum(p.stat().st_size for p in kept)
        while kept and total > self._retention_bytes:
            oldest = kept.pop(0)
            total -= oldest.stat().st_size
            removed.append(oldest)
        for path in removed:
            path.unlink(missing_ok=True)
        return removed
