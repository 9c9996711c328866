"""LiteRT's native INFO line is dropped from fd 2 during interpreter creation; nothing else is."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e_support import REPO


def _stderr_of(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_only_litert_info_lines_are_dropped() -> None:
    err = _stderr_of(
        "import os, sys\n"
        "from appliance.triggers.native_stderr import litert_info_dropped\n"
        "print('before', file=sys.stderr)\n"
        "with litert_info_dropped():\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'ERROR: something LiteRT wants said\\n')\n"
        "    print('a python warning', file=sys.stderr)\n"
        "os.write(2, b'INFO: after the block, untouched\\n')\n"
    )
    assert err == "before\nERROR: something LiteRT wants said\na python warning\nINFO: after the block, untouched\n"


def test_detector_creation_writes_nothing_to_stderr() -> None:
    err = _stderr_of("from appliance.triggers.wakeword import WakeWordDetector\nWakeWordDetector(seed=0)\n")
    assert err == ""
