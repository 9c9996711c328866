"""A real mosquitto broker (Debian's) for the MQTT tests: its own config on a free loopback port, no
system service, no persistence (a restart forgets retained messages, so what comes back was re-sent)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(self, root: Path, *, acl_file: Path | None = None, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"mqtts://localhost:{self.port}" if tls else f"mqtt://127.0.0.1:{self.port}"
        self.log_file = root / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", f"log_dest file {self.log_file}",
                 *([f"certfile {tls[0]}", f"keyfile {tls[1]}"] if tls else []),
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "message_size_limit 65536"]
        if os.geteuid() == 0:  # as root it would drop to user mosquitto, who cannot read the test's files
            lines.append("user root")
        if users:
            password_file = root / "passwords"
            password_file.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(password_file), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if acl_file is not None:
            lines.append(f"acl_file {acl_file}")
        self.config = root / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_file.read_text() if self.log_file.exists() else ''}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@pytest.fixture(name="mosquitto")
def mosquitto_fixture(tmp_path: Path) -> Iterator[Mosquitto]:
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is not installed (scripts/setup.sh --test installs it)")
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


def make_certificates(root: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for localhost / 127.0.0.1: (ca, cert, key)."""
    ca_key, ca, key, csr, cert = (root / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = root / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "2", "-extfile", str(ext))
    return ca, cert, key
