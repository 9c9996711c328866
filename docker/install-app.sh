#!/bin/sh
# Install the appliance into a virtual environment: install-app.sh SOURCE VENV
#   SOURCE: the repository (with pyproject.toml) or a built appliance wheel next to a pyproject.toml
# One place, used by the Dockerfile and by the arm64 root-filesystem check, so they agree.
#
# openwakeword 0.6 declares onnxruntime, scipy, scikit-learn and tflite-runtime as hard
# dependencies; the appliance runs the .tflite models through LiteRT and imports none of them
# (about 270 MB installed). So: every dependency of pyproject.toml except openwakeword, then
# openwakeword itself without its dependencies (plus tqdm and requests, which its model module
# imports), then the appliance without re-resolving.
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
open(sys.argv[2], "w").write("\n".join(d for d in deps if not d.startswith("openwakeword")) + "\ntqdm\nrequests\n")
open(sys.argv[3], "w").write("\n".join(d for d in deps if d.startswith("openwakeword")) + "\n")
PY
"$pip" install --no-cache-dir -q -r "$deps_file"
"$pip" install --no-cache-dir -q --no-deps -r "$oww_file"
"$pip" install --no-cache-dir -q --no-deps "$src"
rm -f "$deps_file" "$oww_file"
# What nothing imports at run time.
find "$venv" -name "__pycache__" -type d -prune -exec rm -rf {} +
find "$venv" -path "*/site-packages/*/tests" -type d -prune -exec rm -rf {} +
"$venv/bin/python" -c "import appliance.cli, appliance.triggers.wakeword"
