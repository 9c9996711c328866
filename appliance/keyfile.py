"""Reading the API key from a file (a Docker or Kubernetes secret), with errors a person can act on.

Docker Compose's file secrets (outside swarm) are bind mounts that keep the host file's owner and
mode, so a key made private by the host user (`chmod 600`) cannot be read by the container's user.
The message says which file, which user is asking and how to fix it on the host.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

VARIABLE = "OPENAI_API_KEY_FILE"


class KeyFileError(ValueError):
    """The key file cannot be used; `retryable` when fixing it on the host needs no restart."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def unreadable_message(path: Path) -> str:
    uid, gid = os.geteuid(), os.getegid()
    try:
        st = path.stat()
        owner = f"it belongs to uid {st.st_uid} (gid {st.st_gid}) with mode {stat.S_IMODE(st.st_mode):04o}"
    except OSError:
        owner = "its directory cannot be searched"
    return (
        f"{VARIABLE} {path} cannot be read by uid {uid} (gid {gid}): permission denied; {owner}. "
        f"Make it readable by uid {uid} on the host, e.g. `sudo chown {uid} deploy/secrets/openai_api_key` "
        f"for docker compose (see docs/deploy.md, \"One device\")"
    )


def read_key_file(path: Path) -> str:
    """The key in `path`, stripped. Raises `KeyFileError` naming the variable, the file and the fix."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except PermissionError:
        raise KeyFileError(unreadable_message(path), retryable=True) from None
    except IsADirectoryError:
        raise KeyFileError(f"{VARIABLE} {path} is a directory, not a file holding the key") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise KeyFileError(f"{VARIABLE} {path} cannot be read: {reason}") from None
    if not key:
        raise KeyFileError(f"{VARIABLE} {path} is empty")
    return key
