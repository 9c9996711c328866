"""The version and git revision a fleet reads: one version (pyproject.toml's, which the changelog's
newest release names), and the same version and revision in `appliance --version`, the device
API's `hello` and the `appliance_build_info` metric, also in a built package that has no .git."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

import appliance
from appliance import version as version_module
from appliance.cli import main
from appliance.telemetry import Telemetry
from appliance.version import build_info, checked_revision, package_version, revision, version_line

from .test_web_server import running, settings

ROOT = Path(__file__).resolve().parents[1]
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$", re.M)


def pyproject_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def git_head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_changelogs_newest_release_is_the_package_version() -> None:
    headings = [(m["version"], m["date"]) for m in RELEASE_HEADING.finditer((ROOT / "CHANGELOG.md").read_text())]
    assert headings[0] == ("Unreleased", None), "the changelog starts with an [Unreleased] section"
    releases = headings[1:]
    assert releases and all(date for _, date in releases), "every release has a date: ## [X.Y.Z] - YYYY-MM-DD"
    assert releases[0][0] == pyproject_version(), "move the version in pyproject.toml with the changelog's release"
    # Newest first, each release once.
    numbers = [tuple(int(part) for part in v.split(".")) for v, _ in releases]
    assert numbers == sorted(set(numbers), reverse=True)


def test_the_installed_version_is_pyprojects() -> None:
    assert metadata.version("appliance") == package_version() == appliance.__version__ == pyproject_version(), (
        "the installed metadata is stale: reinstall (scripts/setup.sh, or pip install -e .)"
    )


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_a_checkout_reports_its_git_head() -> None:
    assert revision() == git_head()


def test_version_flag_prints_version_and_revision(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out == version_line() + "\n"
    assert out.startswith(f"appliance {pyproject_version()} (revision {revision()}, Python ")


def test_build_info_metric_has_version_revision_and_python() -> None:
    text = Telemetry().metrics_text().decode()
    line = next(line for line in text.splitlines() if line.startswith("appliance_build_info{"))
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    assert labels == build_info() and labels["version"] == pyproject_version() and labels["revision"] == revision()
    assert line.endswith(" 1.0")


async def test_hello_carries_version_and_revision() -> None:
    async with running(settings()) as (_, server), connect(f"ws://127.0.0.1:{server.port}/api/events") as ws:
        hello = json.loads(await ws.recv())
    assert hello["event"] == "hello"
    assert (hello["version"], hello["revision"]) == (pyproject_version(), revision())


@pytest.mark.parametrize("text", ["", "two words", "a" * 65, "-starts-with-dash", "quote'd", "new\nline"])
def test_a_revision_that_is_not_one_is_refused_with_the_rule(text: str) -> None:
    with pytest.raises(ValueError, match="APPLIANCE_REVISION must be a git revision"):
        checked_revision(text)


def test_outside_a_checkout_without_a_build_record_the_revision_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert version_module.git_revision(tmp_path) is None
    monkeypatch.setattr(version_module, "_PACKAGE_DIR", tmp_path / "appliance")
    monkeypatch.setitem(sys.modules, "appliance._build", None)  # import fails as in a plain checkout
    version_module.revision.cache_clear()
    try:
        assert version_module.revision() == "unknown"
    finally:
        version_module.revision.cache_clear()


def test_a_wheel_built_without_git_knows_its_revision_from_the_build_arg(tmp_path: Path) -> None:
    # What an image build sees: the sources without .git, the revision in APPLIANCE_REVISION.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "appliance", source / "appliance", ignore=shutil.ignore_patterns("__pycache__", "_build.py"))
    wheels = tmp_path / "wheels"
    env = {**os.environ, "APPLIANCE_REVISION": "0123abc"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
                   env=env, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("appliance-*.whl")
    assert wheel.name.startswith(f"appliance-{pyproject_version()}-")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   env=env, check=True, capture_output=True, timeout=300)
    # -S: none of this venv's site-packages (where the checkout's editable install lives).
    probe = ("import json, sys; sys.path.insert(0, sys.argv[1]); from appliance.version import build_info; "
             "print(json.dumps(build_info()))")
    done = subprocess.run([sys.executable, "-S", "-c", probe, str(target)], cwd=tmp_path, capture_output=True,
                          text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    info = json.loads(done.stdout)
    assert (info["version"], info["revision"]) == (pyproject_version(), "0123abc")


def test_the_deploy_files_name_the_image_of_this_version() -> None:
    """A fleet reads the version from the tag it pulls: compose and the DaemonSet move with pyproject."""
    version = pyproject_version()
    for path in ("deploy/compose.yaml", "deploy/k8s/base/daemonset.yaml"):
        tags = re.findall(r"ghcr\.io/example/appliance:([\w.-]+)", (ROOT / path).read_text())
        assert tags == [version], (path, tags, version)
