"""Keeping secrets out of every log line, API event and transcript, whoever wrote the text.

Secrets are known values (the API key, and whatever other parts register: a web token, the values
MCP servers get in their headers and env, ephemeral client keys) plus shapes no log should ever
carry (`Bearer …`, `sk-…`, `ek_…`). The filter sits on the root handler, so a third-party logger
(websockets logs every handshake header at DEBUG) is covered as much as our own. `mask` does the
same for the other ways text leaves the appliance: event payloads (the device API) and transcript
lines, where a tool's result or error text could hold a token.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any

MASK = "[redacted]"
# Shorter values would redact ordinary words (and a real secret is never this short).
MIN_SECRET_LENGTH = 8
MASK_DEPTH = 32  # how deep `mask` walks nested payloads (a tool's arguments); deeper parts become text

_PATTERNS = re.compile(
    r"(?i:bearer)\s+[^\s\"',;]+"  # an Authorization header's value, whatever the token
    r"|\bsk-[A-Za-z0-9_\-]{8,}"  # OpenAI API keys (sk-…, sk-proj-…)
    r"|\bek_[A-Za-z0-9_\-]{8,}"  # Realtime ephemeral client keys
)

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def register_secret(value: str | None) -> None:
    """Never log `value` (and, for a value with surrounding whitespace, its stripped form)."""
    global _known
    if not value:
        return
    candidates = {v for v in (value, value.strip()) if len(v) >= MIN_SECRET_LENGTH}
    if candidates - _known:
        with _lock:
            _known = _known | candidates


def redact(text: str) -> str:
    """`text` with every registered secret and every secret-shaped token masked."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    return _PATTERNS.sub(lambda m: MASK if not m.group(0).lower().startswith("bearer") else "Bearer " + MASK, text)


def _redact_value(value: Any, depth: int = 0, max_depth: int = 4) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < max_depth and isinstance(value, dict):
        return {_redact_value(k, depth + 1, max_depth): _redact_value(v, depth + 1, max_depth)
                for k, v in value.items()}
    if depth < max_depth and isinstance(value, list | tuple):
        return type(value)(_redact_value(v, depth + 1, max_depth) for v in value)
    text = str(value)  # anything else, or nested deeper than max_depth, as its (redacted) text
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def mask(value: Any) -> Any:
    """A JSON-ready value (an event payload, a transcript line) with every secret in its strings,
    keys included, masked as `redact` masks text; the structure and non-text values are kept."""
    return _redact_value(value, max_depth=MASK_DEPTH)


class RedactingFilter(logging.Filter):
    """Rewrites a record so its message, arguments, extra fields, traceback and stack carry no secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS:
                setattr(record, name, _redact_value(value))
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_info = None  # formatters would format the live exception again, unredacted
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
