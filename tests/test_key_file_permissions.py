"""The key file as the container sees a compose secret: a bind mount keeping the host file's owner and
mode, read by the image's user (uid 10001, gid 29). The tests run as root, so each case forks a child
that drops to that uid before it reads the file (root would read any file)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance import cli

CONTAINER_UID, CONTAINER_GID = 10001, 29
HOST_UID = 1000
KEY = "sk-proj-KeyFileSecret0123456789"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as other users and drop to one")


@pytest.fixture(autouse=True, scope="module")
def code_reachable_by_the_container_user() -> Iterator[None]:
    """In the image the code and Python are readable by uid 10001. A checkout (and its venv) under a private
    directory, such as one from `mktemp -d` (mode 0700), or a Python under /root is not, and the child could
    not read the packaged files or import the standard library. Give the directories above them search
    permission (nothing more) for these tests, and take it back after."""
    changed: list[tuple[Path, int]] = []
    tops = {Path(__file__).resolve().parents[1], Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    for top in sorted(tops):
        for directory in (top, *top.parents):
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH and (directory, mode) not in changed:
                directory.chmod(mode | stat.S_IXOTH)
                changed.append((directory, mode))
    yield
    for directory, mode in changed:
        directory.chmod(stat.S_IMODE(mode))


@pytest.fixture
def secrets_dir() -> Iterator[Path]:
    """Like /run/secrets: a directory anyone may search, holding the key file."""
    path = Path(tempfile.mkdtemp(prefix="appliance-secrets-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def host_key_file(directory: Path, owner: int, mode: int) -> Path:
    """The key file as docs/deploy.md's steps leave it on the host."""
    key_file = directory / "openai_api_key"
    key_file.write_text(KEY)
    os.chown(key_file, owner, owner)
    key_file.chmod(mode)
    return key_file


class Child:
    """A forked child running `body` as the container's user, its stdout and stderr on one pipe."""

    def __init__(self, body: Callable[[], int], env: dict[str, str]) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.close(read_fd)
                os.dup2(write_fd, 1)
                os.dup2(write_fd, 2)
                # pytest captures through its own objects: write to the pipe instead.
                sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
                for name in [n for n in os.environ if n.startswith(("APPLIANCE_", "OPENAI_"))]:
                    del os.environ[name]
                os.environ.update(env)
                os.setgroups([])
                os.setgid(CONTAINER_GID)
                os.setuid(CONTAINER_UID)
                code = body()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:
                os.write(2, f"child failed: {exc!r}\n".encode())
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        os.close(write_fd)
        self.pid, self.fd, self.output = pid, read_fd, ""

    def read_until(self, predicate: Callable[[str], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.output):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; output so far:\n{self.output}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise AssertionError(f"child ended; output:\n{self.output}")
                self.output += chunk.decode(errors="replace")

    def wait(self, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while chunk := os.read(self.fd, 65536):
                    self.output += chunk.decode(errors="replace")
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError(f"child did not exit; output:\n{self.output}")
            time.sleep(0.02)


def config_command() -> int:
    return cli.main(["config"])


def test_key_private_to_the_host_user_is_a_clear_error(secrets_dir: Path) -> None:
    key_file = host_key_file(secrets_dir, HOST_UID, 0o600)  # what `chmod 600` by the host user leaves
    child = Child(config_command, {"OPENAI_API_KEY_FILE": str(key_file)})
    rc = child.wait()
    assert rc == 2, child.output
    out = child.output
    assert str(key_file) in out and "OPENAI_API_KEY_FILE" in out
    assert "uid 10001" in out and f"uid {HOST_UID}" in out and "0600" in out
    assert "sudo chown 10001" in out  # the fix
    assert "Traceback" not in out and KEY not in out


def test_the_documented_steps_give_a_readable_key(secrets_dir: Path) -> None:
    # docs/deploy.md, "One device": written private by the host user, then given to the container's uid.
    key_file = host_key_file(secrets_dir, HOST_UID, 0o600)
    os.chown(key_file, CONTAINER_UID, -1)
    child = Child(config_command, {"OPENAI_API_KEY_FILE": str(key_file)})
    rc = child.wait()
    assert rc == 0, child.output
    assert json.loads(child.output)["openai_api_key"] == "********"


def run_until_settings_load() -> int:
    settings = cli.load_run_settings(first_wait_s=0.5)
    if settings is None:
        print("stopped while waiting")
        return 0
    assert settings.openai_api_key is not None
    print("key loaded:", settings.openai_api_key.get_secret_value() == KEY)
    return 0


def test_run_waits_for_the_key_with_backoff_and_starts_once_fixed(secrets_dir: Path) -> None:
    key_file = host_key_file(secrets_dir, HOST_UID, 0o600)
    child = Child(run_until_settings_load, {"OPENAI_API_KEY_FILE": str(key_file), "APPLIANCE_LOG__FORMAT": "json"})
    child.read_until(lambda out: out.count('"key_unreadable"') >= 2, 10)
    lines = [json.loads(line) for line in child.output.splitlines() if line.startswith("{")]
    waits = [line["retry_in_s"] for line in lines if line["event"] == "key_unreadable"]
    assert waits[:2] == [0.5, 1.0]  # the pause grows: no restart loop at full speed
    assert lines[0]["level"] == "error" and "sudo chown 10001" in lines[0]["msg"]
    os.chown(key_file, CONTAINER_UID, -1)  # fixed on the host while it waits
    assert child.wait(10) == 0, child.output
    assert "key loaded: True" in child.output
    assert KEY not in child.output


def test_sigterm_while_waiting_for_the_key_stops_cleanly(secrets_dir: Path) -> None:
    key_file = host_key_file(secrets_dir, HOST_UID, 0o600)
    child = Child(run_until_settings_load, {"OPENAI_API_KEY_FILE": str(key_file)})
    child.read_until(lambda out: "key_unreadable" in out or "cannot be read" in out, 10)
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait(3) == 0, child.output
    assert "stopped while waiting" in child.output


def test_the_deploy_doc_and_compose_give_the_key_to_the_images_user() -> None:
    repo = Path(__file__).resolve().parents[1]
    dockerfile = (repo / "docker/Dockerfile").read_text()
    # The uid these tests read as; its primary group (audio, gid 29) comes from the image's passwd.
    assert f"\nUSER {CONTAINER_UID}\n" in dockerfile and "--gid audio" in dockerfile and CONTAINER_GID == 29
    deploy_doc = (repo / "docs/deploy.md").read_text()
    steps = deploy_doc.split("### One device", 1)[1].split("```", 2)[1]
    compose = (repo / "deploy/compose.yaml").read_text()
    for text in (steps, compose):
        assert f"sudo chown {CONTAINER_UID} deploy/secrets/openai_api_key" in text
        assert "chmod 600" not in text
