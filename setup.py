"""Build hook: records the git revision in the built package as ``appliance/_build.py``.

Everything else about the package is in pyproject.toml. The revision is ``APPLIANCE_REVISION``
when set (an image built without ``.git`` passes it as a build arg), else ``git rev-parse HEAD``
of this checkout, else the ``_build.py`` an sdist already carries; with none of them nothing is
written and the package reports "unknown" (see appliance/version.py).
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
# By path: importing the package at build time would need its dependencies.
VERSION = runpy.run_path(str(ROOT / "appliance" / "version.py"))


def build_revision() -> str | None:
    given = os.environ.get(VERSION["REVISION_ENV"], "")
    if given.strip():
        try:
            return str(VERSION["checked_revision"](given))
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
    found: str | None = VERSION["git_revision"](ROOT)
    return found


def write_build_module(package_dir: Path) -> None:
    revision = build_revision()
    if revision is not None:
        (package_dir / f"{VERSION['BUILD_MODULE']}.py").write_text(VERSION["build_module_text"](revision))


class BuildPyWithRevision(build_py):
    def run(self) -> None:
        super().run()
        # An editable install runs from the checkout, where git answers at run time.
        if not getattr(self, "editable_mode", False):
            write_build_module(Path(self.build_lib) / "appliance")


class SdistWithRevision(sdist):
    def make_release_tree(self, base_dir: str, files: Any) -> None:
        super().make_release_tree(base_dir, files)
        write_build_module(Path(base_dir) / "appliance")


setup(cmdclass={"build_py": BuildPyWithRevision, "sdist": SdistWithRevision})
