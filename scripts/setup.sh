#!/usr/bin/env bash
# Set up the appliance on a Debian / Raspberry Pi OS machine, bookworm (Python 3.11) or trixie
# (Python 3.13), 3.12 too: system libraries (apt) and a virtual environment in .venv with the
# package installed.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --test   plus what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# libportaudio2: sounddevice's PortAudio; libpulse0: the pulse audio backend (soundcard);
# libspeexdsp1: software echo cancellation.
packages=(libportaudio2 libpulse0 libasound2 libspeexdsp1 alsa-utils)
if [ "$with_test" = 1 ]; then
  # The paced-audio test harness: a private PulseAudio daemon reached through ALSA's pulse plugin.
  packages+=(pulseaudio pulseaudio-utils libasound2-plugins)
  packages+=(mosquitto)  # the MQTT tests start their own broker (tests/mosquitto.py)
  # The device page in a real browser (selenium drives headless chromium), and CI's rebuild of the
  # page's committed JavaScript bundle (scripts/build_browser_bundle.sh --check).
  packages+=(chromium chromium-driver)
  # Node and npm from Debian, unless a Node with its own npm is installed already (NodeSource's
  # nodejs bundles npm and conflicts with Debian's npm package).
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 13)' 2>/dev/null; then
  echo "error: $PYTHON is not Python 3.11, 3.12 or 3.13 (set PYTHON=/path/to/python3.x)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "python$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip

# gpiozero's pin driver on a Pi (Pi 5 included) is lgpio. PyPI has lgpio wheels for 3.11 and 3.12
# only; elsewhere (trixie's 3.13 on arm64) pip builds it from source. Debian has no liblgpio (only
# Raspberry Pi OS's archive does, and its slim images lack it), so build it the way its PyPI wheels
# are built, with the C library linked in (PYPI=1, read by lgpio's setup.py): that needs swig, a C
# compiler and the Python headers, nothing at run time.
lgpio_spec="$(.venv/bin/python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print(next((d.split(";")[0].strip() for d in deps if d.startswith("lgpio")), ""))')"
if [ "$(uname -m)" = aarch64 ] && [ -n "$lgpio_spec" ] \
   && ! .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d "$(mktemp -d)" "$lgpio_spec" >/dev/null 2>&1; then
  build=(swig gcc libc6-dev)
  .venv/bin/python -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2>/dev/null \
    || build+=("python$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')-dev")
  echo "lgpio has no wheel for this Python: building it from source (apt: ${build[*]})"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${build[@]}"
  export PYPI=1
fi

if [ "$with_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q .
fi
echo "set up: $(.venv/bin/python -c 'import appliance, sys; print(sys.version.split()[0])') in .venv"
