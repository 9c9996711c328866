"""Any value for any setting: `appliance config` either accepts it or exits 2 naming the variable.
Never a traceback, never the key in the output. Hypothesis draws the variables from the settings
model's own fields and the values from garbage, huge, unicode, empty and typed-but-wrong text."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from appliance import cli
from appliance.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SCRATCH = Path(tempfile.mkdtemp(prefix="appliance-fuzz-"))


def group_fields() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = list(annotation.model_fields)
    return out


GROUPS = group_fields()
FIELD_VARS = [f"APPLIANCE_{g.upper()}__{f.upper()}" for g, fields in GROUPS.items() for f in fields]
GROUP_VARS = [f"APPLIANCE_{g.upper()}" for g in GROUPS]  # a whole group as JSON
OTHER_VARS = ["APPLIANCE_DATA_DIR", "APPLIANCE_UNKNOWN__THING", "APPLIANCE_AUDIO__NO_SUCH_FIELD"]
KEY = "sk-hypothesis-Key0123456789secret"

# Lone surrogates are how Python shows bytes of a non-UTF-8 environment; NUL cannot be in one.
any_char = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)) | st.sampled_from(
    ["\udc80", "\udcff", "\u202e", "\ufeff", "😀", "ß", "\t", "\n", " "]
)
typed_looking = st.sampled_from([
    "", " ", "0", "-1", "1", "2", "8", "100", "101", "48000", "0.5", "1e400", "-0.0", "nan", "inf", "-inf",
    "true", "false", "yes", "on", "null", "None", "[]", "{}", "[1]", '{"a": 1}', '{"volume": 5000}',
    "9" * 5000, "a" * 20000, "hey_jarvis", "alexa,hey_jarvis", "alexa:0.6", "alexa=0.6", ":", ",,,",
    "ws://example.com/v1", "ws://127.0.0.1:1/v1", "ws://[::1", "wss://", "https://x", "127.0.0.1:9090",
    "0.0.0.0:99999", "/nonexistent/file", "/tmp", "/etc/passwd", "gate", "aec", "DEBUG", "json", KEY,
])
values = st.one_of(typed_looking, st.text(any_char, max_size=40), st.text(any_char, min_size=200, max_size=3000))


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    env: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(FIELD_VARS + GROUP_VARS + OTHER_VARS), max_size=4, unique=True)):
        if draw(st.booleans()):
            name = "".join(c.lower() if draw(st.booleans()) else c for c in name)  # names are case-insensitive
        env[name] = draw(values)
    key_source = draw(st.sampled_from(["none", "env", "file", "missing_file", "dir", "empty_file"]))
    if key_source == "env":
        env["OPENAI_API_KEY"] = KEY
    elif key_source != "none":
        target = {"file": SCRATCH / "key", "missing_file": SCRATCH / "nokey", "dir": SCRATCH,
                  "empty_file": SCRATCH / "empty"}[key_source]
        env["OPENAI_API_KEY_FILE"] = str(target)
    if draw(st.integers(0, 4)) == 0:
        env["APPLIANCE_CONFIG_FILE"] = draw(st.sampled_from(
            [str(SCRATCH / "good.toml"), str(SCRATCH / "bad.toml"), str(SCRATCH / "wrong.toml"),
             str(SCRATCH / "missing.toml"), str(SCRATCH)]))
    return env


def setup_module() -> None:
    (SCRATCH / "key").write_text(KEY + "\n")
    (SCRATCH / "empty").write_text("  \n")
    (SCRATCH / "good.toml").write_text('[realtime]\nvoice = "verse"\n')
    (SCRATCH / "bad.toml").write_text("this is [not toml\n")
    (SCRATCH / "wrong.toml").write_text('[session]\nidle_timeout_s = "soon"\n[audio]\nvolume = 1000\n')


def teardown_module() -> None:
    shutil.rmtree(SCRATCH, ignore_errors=True)


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.upper().startswith(("APPLIANCE_", "OPENAI_"))]:
        del os.environ[name]
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_config(env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: Any = cli.main(["config"])
        except SystemExit as exc:
            code = exc.code
    return int(code), out.getvalue(), err.getvalue()


NAMED = re.compile(r"^  ((?:APPLIANCE|OPENAI)_[A-Z0-9_]+)\b")


def check(env: dict[str, str], code: int, out: str, err: str) -> None:
    assert KEY not in out + err, "the key was echoed"
    assert "Traceback" not in out + err
    if code == 0:
        data = json.loads(out)
        assert data["openai_api_key"] in (None, "********")
        return
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert lines[0] == "Invalid settings:" and len(lines) > 1, err
    given_names = {n.upper() for n in env}
    toml_names = {"APPLIANCE_SESSION__IDLE_TIMEOUT_S", "APPLIANCE_AUDIO__VOLUME"}  # what wrong.toml sets
    for line in lines[1:]:
        match = NAMED.match(line)
        assert match, f"a line that names no variable: {line!r}"
        name = match.group(1)
        related = any(name == g or name.startswith(g + "__") or g.startswith(name + "__") for g in given_names)
        assert related or name in toml_names, f"{name} was not set: {env}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(environments())
def test_any_environment_is_accepted_or_named(env: dict[str, str]) -> None:
    check(env, *run_config(env))


SUBPROCESS_CASES = [
    {"APPLIANCE_AUDIO": "garbage", "OPENAI_API_KEY": KEY},
    {"APPLIANCE_CONFIG_FILE": "/etc/passwd"},
    {"APPLIANCE_SESSION__IDLE_TIMEOUT_S": "inf", "APPLIANCE_REALTIME__URL": KEY},
    {"APPLIANCE_WAKE__THRESHOLDS": "é:\u202e", "APPLIANCE_LEDS__RED_PIN": "9" * 5000},
    {"APPLIANCE_REALTIME__VOICE": "x" * 20000, "OPENAI_API_KEY": KEY},
]


@pytest.mark.parametrize("env", SUBPROCESS_CASES)
def test_config_subprocess(env: dict[str, str]) -> None:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    full.update(env)
    result = subprocess.run([sys.executable, "-m", "appliance", "config"], cwd=REPO, env=full,
                            capture_output=True, text=True, timeout=60)
    check(env, result.returncode, result.stdout, result.stderr)


def test_environment_bytes_that_are_not_utf8() -> None:
    full = {k.encode(): v.encode() for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "OPENAI_"))}
    full[b"APPLIANCE_AUDIO__ECHO"] = b"g\xffte"
    result = subprocess.run([sys.executable, "-m", "appliance", "config"], cwd=REPO, env=full,
                            capture_output=True, timeout=60)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 2 and "APPLIANCE_AUDIO__ECHO" in err and "Traceback" not in err
    assert set(string.printable) >= set(err.splitlines()[1][:40])
