"""What an announcement's text may be: a string, not blank, at most `MAX_CHARS` characters once
control characters (a terminal escape, a NUL, a stray carriage return) are taken out."""

from __future__ import annotations

import unicodedata
from typing import Any

MAX_CHARS = 500  # about half a minute of speech: an announcement, not a reading


def clean_text(text: Any) -> tuple[str | None, str | None]:
    """(the text to speak, None), or (None, why it is refused). Line breaks and tabs become spaces."""
    if not isinstance(text, str):
        return None, "text must be a string"
    if len(text) > 4 * MAX_CHARS:  # not worth cleaning: refused whatever it holds
        return None, f"text too long (at most {MAX_CHARS} characters)"
    kept = "".join(" " if c in "\t\n\r" else c for c in text if c in "\t\n\r" or not _control(c))
    kept = " ".join(kept.split())
    if not kept:
        return None, "text is empty"
    if len(kept) > MAX_CHARS:
        return None, f"text too long ({len(kept)} characters, at most {MAX_CHARS})"
    return kept, None


def _control(c: str) -> bool:
    # Cc: C0/C1 controls; Cf: format characters such as bidi overrides, which can hide what is said.
    return unicodedata.category(c) in ("Cc", "Cf")
