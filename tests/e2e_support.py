"""Running `appliance run` as a real subprocess against the test sound card and a fake server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.triggers.verifier import EmbeddingVerifier, VerifierRule, bundled_verifier

REPO = Path(__file__).resolve().parents[1]


def bundled_rule() -> VerifierRule:
    """How the shipped ``hey_jarvis`` verifier decides (a wake comes from the stock score, the verifier's
    or both, per ``VerifierRule``)."""
    path = bundled_verifier("hey_jarvis")
    assert path is not None
    return EmbeddingVerifier.load(path).rule


def appliance_env(card_env: dict[str, str], server_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    env.update(card_env)
    env.update(
        {
            "OPENAI_API_KEY": "sk-test-not-a-real-key",
            "APPLIANCE_REALTIME__URL": server_url,
            "APPLIANCE_AUDIO__INPUT_DEVICE": "mic",
            "APPLIANCE_AUDIO__OUTPUT_DEVICE": "speaker",
            "APPLIANCE_AUDIO__INPUT_RATE": "48000",
            "APPLIANCE_AUDIO__OUTPUT_RATE": "48000",
            "APPLIANCE_LOG__FORMAT": "json",
            "APPLIANCE_SESSION__IDLE_TIMEOUT_S": "2",
            "APPLIANCE_HEALTH__ENABLED": "false",
            "GPIOZERO_PIN_FACTORY": "mock",
            "PYTHONUNBUFFERED": "1",
            # A fresh data directory per run, unless a test shares one between two runs on purpose.
            "APPLIANCE_DATA_DIR": tempfile.mkdtemp(prefix="appliance-data-"),
        }
    )
    env.update(overrides)
    return env


class ApplianceProcess:
    """`python -m appliance run` with its JSON log lines collected as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lines: list[dict[str, Any]] = []
        self.other_output: list[str] = []
        self.stderr_lines: list[str] = []  # everything written to stderr, JSON or not
        self.proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> ApplianceProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "appliance", "run", cwd=REPO, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout)),
            asyncio.create_task(self._read(self.proc.stderr, self.stderr_lines)),
        ]
        return self

    async def _read(self, stream: asyncio.StreamReader, raw: list[str] | None = None) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            if raw is not None:
                raw.append(text)
            try:
                item = json.loads(text)
            except ValueError:
                self.other_output.append(text)
                continue
            if isinstance(item, dict):
                item["_t"] = time.monotonic()
                self.lines.append(item)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == event]

    def states(self) -> list[str]:
        return [line["state"] for line in self.events("state")]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"appliance exited ({self.proc.returncode}) waiting for {what}: {self.dump()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.dump()}")
            await asyncio.sleep(0.05)

    async def wait_ready(self, timeout: float = 60) -> None:
        await self.wait_for(lambda: len(self.events("audio_open")) >= 2, timeout, "audio streams to open")

    def all_output(self) -> str:
        return "\n".join([json.dumps(line) for line in self.lines] + self.other_output)

    async def stop(self, timeout: float = 5) -> int:
        """SIGTERM; a process that has not exited cleanly within `timeout` is killed (and fails rc == 0)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._readers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 2)
        assert self.proc.returncode is not None
        return self.proc.returncode

    def dump(self) -> str:
        tail = [{k: v for k, v in line.items() if k != "_t"} for line in self.lines[-25:]]
        return "\n" + "\n".join(json.dumps(x) for x in tail) + "\n" + "\n".join(self.other_output[-20:])


def python_json(code: str, timeout: float = 180) -> Any:
    """Run `code` in a fresh interpreter (nothing imported yet) and return the JSON of its last line."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
