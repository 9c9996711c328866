#!/usr/bin/env bash
# Set up the appliance on a Debian / Raspberry Pi OS machine with Python 3.11:
# system libraries (apt) and a virtual environment in .venv with the package installed.
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
if ! "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  echo "error: $PYTHON is not Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends python3-venv
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$with_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q .
fi
echo "set up: $(.venv/bin/python -c 'import appliance, sys; print(sys.version.split()[0])') in .venv"
