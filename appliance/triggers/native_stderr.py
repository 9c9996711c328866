"""Keep LiteRT's native INFO lines out of stderr while wake-word interpreters are created.

LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to file
descriptor 2 (C++, not Python logging) the first time an interpreter allocates its tensors. The
appliance promises one JSON object per line and nothing else, so during interpreter creation fd 2
points at a temporary file; afterwards every line except LiteRT's ``INFO:`` ones is written back, so
warnings, errors and anything another thread printed meanwhile are delayed, never lost.

Redirecting a file descriptor affects the whole process: use it at start-up (the detector is built
before any other thread starts), not around per-frame work.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["litert_info_dropped"]

_STDERR_FD = 2
_LITERT_INFO = b"INFO: "  # LiteRT's minimal logger prefixes its info-level lines so


@contextlib.contextmanager
def litert_info_dropped() -> Iterator[None]:
    """Within the block, fd 2 is captured; on exit, everything but LiteRT's ``INFO:`` lines is re-emitted."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(_STDERR_FD)
    except OSError:  # no stderr at all: nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), _STDERR_FD)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, _STDERR_FD)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().splitlines(keepends=True) if not line.startswith(_LITERT_INFO)]
            if kept:
                os.write(_STDERR_FD, b"".join(kept))
