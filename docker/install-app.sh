#!/bin/sh
# Install the appliance into a virtual environment: install-app.sh SOURCE VENV
#   SOURCE: the repository (with pyproject.toml) or a built appliance wheel next to a pyproject.toml
# One place, used by the Dockerfile and by the arm64 root-filesystem check, so they agree.
#
# openwakeword 0.6 (while pyproject.toml lists it) declares onnxruntime, scipy, scikit-learn and
# tflite-runtime as hard dependencies; the appliance runs the .tflite models through LiteRT and
# imports none of them (about 270 MB installed), and tflite-runtime has no wheel after Python 3.11.
# So: every dependency of pyproject.toml except openwakeword, then openwakeword itself without its
# dependencies (plus tqdm and requests, which its model module imports), then the appliance
# without re-resolving.
set -eu
src="$1"
venv="$2"
python="${PYTHON:-python3}"
pyproject="$src/pyproject.toml"
[ -f "$pyproject" ] || pyproject="$(dirname "$src")/pyproject.toml"

"$python" -m venv "$venv"
pip="$venv/bin/pip"
"$pip" install --no-cache-dir -q --upgrade pip

deps_file="$(mktemp)"
oww_file="$(mktemp)"
"$python" - "$pyproject" "$deps_file" "$oww_file" <<'PY'
import sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
oww = [d for d in deps if d.startswith("openwakeword")]
rest = [d for d in deps if not d.startswith("openwakeword")] + (["tqdm", "requests"] if oww else [])
open(sys.argv[2], "w").write("\n".join(rest) + "\n")
open(sys.argv[3], "w").write("\n".join(oww) + "\n" if oww else "")
PY

# gpiozero's pin driver on a Pi is lgpio; PyPI has its wheels for 3.11 and 3.12 only. Elsewhere
# (3.13 on arm64) build it the way those wheels are built, its C library linked in (PYPI=1, read by
# lgpio's setup.py; Debian has no liblgpio), with build tools that are removed again afterwards.
build_pkgs=""
lgpio_req="$(grep '^lgpio' "$deps_file" | cut -d';' -f1 || true)"
if [ -n "$lgpio_req" ] && [ "$(uname -m)" = aarch64 ] \
   && ! "$pip" download -q --no-cache-dir --no-deps --only-binary=:all: -d "$(mktemp -d)" "$lgpio_req" > /dev/null 2>&1; then
  wanted="swig gcc libc6-dev"
  "$venv/bin/python" -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2> /dev/null \
    || wanted="$wanted python$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-dev"
  for p in $wanted; do  # only what is missing, so that only that is purged afterwards
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || build_pkgs="$build_pkgs $p"
  done
  echo "lgpio: no wheel for this Python, building it (apt:${build_pkgs:- nothing missing})"
  if [ -n "$build_pkgs" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $build_pkgs > /dev/null
  fi
  export PYPI=1
fi

"$pip" install --no-cache-dir -q -r "$deps_file"
[ -s "$oww_file" ] && "$pip" install --no-cache-dir -q --no-deps -r "$oww_file"
"$pip" install --no-cache-dir -q --no-deps "$src"
rm -f "$deps_file" "$oww_file"
if [ -n "$build_pkgs" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --autoremove $build_pkgs > /dev/null
  apt-get clean
  rm -rf /var/lib/apt/lists/*
fi
# What nothing imports at run time.
find "$venv" -path "*/site-packages/*/tests" -type d -prune -exec rm -rf {} +
# Bytecode for every module, checked against nothing at import (unchecked-hash): a start does not
# stat or recompile sources, and copying the venv between stages or layers cannot make it stale.
# COMPILE_BYTECODE=0 skips it where compiling is slow and no start is timed (the emulated arm64 check).
find "$venv" -name "__pycache__" -type d -prune -exec rm -rf {} +
if [ "${COMPILE_BYTECODE:-1}" = 1 ]; then
  "$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$venv/lib" > /dev/null
fi
"$venv/bin/python" -c "import appliance.cli, appliance.triggers.wakeword"
