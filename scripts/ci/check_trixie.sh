#!/usr/bin/env bash
# The README's commands on what a new Raspberry Pi has: Debian 13 "trixie" with Debian's own
# Python 3.13, in an mmdebstrap root filesystem (native amd64) entered with chroot. Runs
# `scripts/setup.sh --test` there as a person would, then `appliance config`, a wake-word scan and
# a smoke set of the test suite (an end-to-end conversation through the FIFO sound card, SIGTERM,
# the wake word, settings, LEDs and button on gpiozero's MockFactory); TRIXIE_FULL_SUITE=1 runs
# the whole suite instead. Skipped, saying so, while pyproject.toml's requires-python excludes 3.13.
# Env: SOURCE_DIR=DIR uses DIR instead of the committed tree (git archive HEAD).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=trixie
t0=$(date +%s)
phase() { echo "== $1 (+$(( $(date +%s) - t0 )) s)"; }
smoke=(tests/test_e2e.py tests/test_wakeword.py tests/test_settings.py tests/test_leds_button.py)

work="$(mktemp -d /var/tmp/appliance-trixie.XXXXXX)"
root="$work/rootfs"
cleanup() {
  for m in dev/pts dev/shm dev sys proc tmp; do mountpoint -q "$root/$m" 2> /dev/null && umount -l "$root/$m"; done
  # Never delete through a mount (the host's /dev is bound in): keep the tree if one is left.
  if grep -q " $root/" /proc/mounts; then echo "mounts left under $root: not deleting $work" >&2; return; fi
  rm -rf "$work"
}
trap cleanup EXIT

phase "source"
src="${SOURCE_DIR:-}"
if [ -z "$src" ]; then
  src="$work/src"
  mkdir -p "$src"
  git -C "$repo" archive HEAD | tar -x -C "$src"
fi
if ! python3 - "$src/pyproject.toml" <<'PY'
import sys, tomllib
from pip._vendor.packaging.specifiers import SpecifierSet
spec = tomllib.load(open(sys.argv[1], "rb"))["project"].get("requires-python", "")
sys.exit(0 if SpecifierSet(spec).contains("3.13.0") else 1)
PY
then
  echo "trixie check skipped: pyproject.toml's requires-python excludes Python 3.13"
  exit 0
fi

phase "host tools"
if ! command -v mmdebstrap > /dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap > /dev/null
fi

# pip inside the root filesystem reaches the index as the host does: the host's CA bundle (which may
# hold a proxy's CA) and index URL, none of the host's other pip settings (local wheel dirs,
# constraints).
ca="$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().openssl_cafile)')"
[ -f "${PIP_CERT:-}" ] && ca="$PIP_CERT"
ca_in_root=/etc/ssl/certs/host-ca.pem
env_in_root=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
  "PIP_CERT=$ca_in_root" "SSL_CERT_FILE=$ca_in_root" "REQUESTS_CA_BUNDLE=$ca_in_root" PIP_DISABLE_PIP_VERSION_CHECK=1)
[ -n "${PIP_INDEX_URL:-}" ] && env_in_root+=("PIP_INDEX_URL=$PIP_INDEX_URL")
[ "${CI:-}" = true ] && env_in_root+=(CI=true)

phase "trixie root filesystem (Debian's python3, git, as on a new Pi)"
start=$(date +%s)
mmdebstrap --quiet --variant=minbase --include=python3,ca-certificates,git \
  --customize-hook="cp '$ca' \"\$1$ca_in_root\" && cp /etc/resolv.conf \"\$1/etc/resolv.conf\"" \
  "$suite" "$root" "$mirror"
mkdir -p "$root/src" && cp -a "$src/." "$root/src/"
echo "root filesystem: $(du -sx --block-size=1M "$root" | cut -f1) MB in $(( $(date +%s) - start )) s"
# The host's /dev (not its submounts; a slave, so nothing done here reaches the host), a private
# /dev/shm (chromium) and /dev/pts (apt's log), /sys read-only, a /tmp of its own.
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o size=1g,mode=1777 tmpfs "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
mount --bind -o ro /sys "$root/sys" 2> /dev/null || mount --bind /sys "$root/sys"
mount -t tmpfs -o size=2g,mode=1777 tmpfs "$root/tmp"
in_root() { chroot "$root" env -i "${env_in_root[@]}" sh -c "cd /src && $1"; }
in_root 'python3 --version' | grep -q '^Python 3\.13\.'

phase "scripts/setup.sh --test (the README's second command)"
start=$(date +%s)
in_root 'scripts/setup.sh --test' 2>&1 \
  | grep -Ev "^(WARNING: Location|debconf|Selecting|Preparing|Unpacking|Setting up|Processing|\(Reading)" || true
setup_s=$(( $(date +%s) - start ))
in_root '.venv/bin/python -c "import sys; assert sys.version_info[:2] == (3, 13), sys.version; print(\"venv:\", sys.version.split()[0])"'

phase "smoke: appliance config, a wake-word scan"
config="$(in_root 'OPENAI_API_KEY=sk-secret-trixie-check .venv/bin/appliance config')"
if echo "$config" | grep -q sk-secret-trixie-check; then echo "the API key leaked into config output" >&2; exit 1; fi
echo "$config" | python3 -c 'import json,sys; c=json.load(sys.stdin); assert c["openai_api_key"]=="********", c; print("config ok: key masked")'
in_root '.venv/bin/appliance wakeword tests/fixtures/hey_jarvis_what_time.wav tests/fixtures/negative.wav 2>/dev/null' | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
score = {r["file"].rsplit("/", 1)[-1]: r["scores"]["hey_jarvis"] for r in rows}
assert score["hey_jarvis_what_time.wav"] >= 0.5 and score["negative.wav"] < 0.5, score
print("wake word ok on Python 3.13:", score)'

start=$(date +%s)
if [ "${TRIXIE_FULL_SUITE:-0}" = 1 ]; then
  phase "the whole test suite (the README's second command)"
  in_root '.venv/bin/python -m pytest -q -p no:cacheprovider'
else
  phase "smoke set of the test suite: ${smoke[*]}"
  in_root ".venv/bin/python -m pytest -q -p no:cacheprovider ${smoke[*]}"
fi
tests_s=$(( $(date +%s) - start ))
echo "trixie check passed: setup ${setup_s} s, tests ${tests_s} s, total $(( $(date +%s) - t0 )) s"
