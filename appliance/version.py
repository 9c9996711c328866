"""What this appliance is: its version and the git revision it was built from.

The version has one source, pyproject.toml's ``version``, read from the installed package's
metadata. The revision, first found of:
1. the checkout the package runs from (an editable install): ``git rev-parse HEAD``;
2. ``appliance/_build.py``, written into a wheel or image at build time by ``setup.py`` from the
   ``APPLIANCE_REVISION`` environment variable (a Docker build arg), else from git;
3. ``"unknown"``.

Standard library only, no relative imports: ``setup.py`` loads this file by path at build time.
"""

from __future__ import annotations

import functools
import importlib
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

UNKNOWN = "unknown"
BUILD_MODULE = "_build"
"""``appliance/_build.py``: exists only in built packages, never in the repository."""
REVISION_ENV = "APPLIANCE_REVISION"
GIT_TIMEOUT_S = 5.0

_PACKAGE_DIR = Path(__file__).resolve().parent
# A commit hash, a tag or a `git describe` name; nothing that needs quoting anywhere it is shown.
_REVISION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,63}")


def package_version() -> str:
    """The installed package's version (pyproject.toml's ``version`` when it was installed)."""
    try:
        return metadata.version("appliance")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def checked_revision(text: str) -> str:
    """``text`` stripped, if it can be a git revision; else a ValueError saying what is wanted."""
    value = text.strip()
    if not _REVISION.fullmatch(value):
        raise ValueError(
            f"{REVISION_ENV} must be a git revision (letters, digits, '.', '_', '+', '-'; at most 64 characters), "
            f"got {value[:80]!r}"
        )
    return value


def git_revision(checkout: Path) -> str | None:
    """HEAD's commit hash in ``checkout`` (a directory holding ``.git``), or None when it is not a
    checkout, git is missing or fails."""
    if not (checkout / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if _REVISION.fullmatch(value) else None


def build_module_text(revision: str) -> str:
    """The text of ``_build.py`` recording ``revision``."""
    return f'"""Written at build time by setup.py."""\n\nREVISION = {checked_revision(revision)!r}\n'


def _recorded_revision() -> str | None:
    try:
        build = importlib.import_module(f"appliance.{BUILD_MODULE}")
    except ImportError:
        return None
    value = getattr(build, "REVISION", None)
    return value if isinstance(value, str) and _REVISION.fullmatch(value) else None


@functools.cache
def revision() -> str:
    """The git revision of the running code (see the module docstring for where it comes from)."""
    return git_revision(_PACKAGE_DIR.parent) or _recorded_revision() or UNKNOWN


def build_info() -> dict[str, str]:
    """version, revision and python: what ``appliance --version``, the ``hello`` message and the
    ``appliance_build_info`` metric say."""
    return {"version": package_version(), "revision": revision(), "python": platform.python_version()}


def version_line() -> str:
    """``appliance VERSION (revision REVISION, Python X.Y.Z)``: the ``--version`` output."""
    info = build_info()
    return f"appliance {info['version']} (revision {info['revision']}, Python {info['python']})"
