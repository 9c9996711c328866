"""The agent's instructions, read afresh for each conversation, so an edited file takes effect on the
next wake without a restart. A read that fails (the file removed, replaced, unreadable, not UTF-8)
must not end the appliance: the last good text is used instead, and the problem is logged once per
failing stretch."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..logs import log_event
from ..settings import AgentSettings, packaged_default

log = logging.getLogger("appliance.conversation")

# Used only when the very first read fails and the packaged file is unreadable too.
MINIMAL_INSTRUCTIONS = "You are a helpful voice assistant. Keep answers short and spoken."

_lock = threading.Lock()
_last_good: dict[Path, str] = {}
_failing: set[Path] = set()


def current_instructions(agent: AgentSettings) -> str:
    """The instructions to start a conversation with; never raises for a file problem."""
    if agent.instructions:
        return agent.instructions
    path = agent.instructions_file
    try:
        text = agent.resolved_instructions()
    except (OSError, ValueError) as exc:
        fallback = _fallback(path)
        with _lock:
            first = path not in _failing
            _failing.add(path)
        if first:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            using = "the last good instructions" if path in _last_good else "the default instructions"
            log_event(log, "instructions_unreadable", f"instructions file {path} cannot be read ({reason}); "
                      f"using {using} until it can", level=logging.WARNING, path=str(path))
        return fallback
    with _lock:
        _last_good[path] = text
        recovered = path in _failing
        _failing.discard(path)
    if recovered:
        log_event(log, "instructions_readable", f"instructions file {path} is readable again", path=str(path))
    return text


def _fallback(path: Path) -> str:
    if path in _last_good:
        return _last_good[path]
    try:
        return packaged_default("instructions.md").read_text(encoding="utf-8").strip() or MINIMAL_INSTRUCTIONS
    except (OSError, ValueError):
        return MINIMAL_INSTRUCTIONS
