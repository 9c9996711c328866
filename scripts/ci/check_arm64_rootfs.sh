#!/usr/bin/env bash
# The image's install steps, rehearsed for arm64 without a Docker engine: build a Debian arm64 root
# filesystem (trixie with Debian's Python 3.13, what a new Pi has; bookworm with 3.11 while
# pyproject.toml's requires-python excludes 3.13, or when SUITE=bookworm), run docker/install-runtime-deps.sh and docker/install-app.sh in it under
# qemu-user (pinned to Cortex-A53, the oldest core we support: Pi Zero 2 W / Pi 3), then run the
# appliance there: import it, print its config, load the wake-word model and score two WAVs.
# Reports the installed size (target <= 450 MB) and the time each phase took.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"
limit_mb=450
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export QEMU_CPU=cortex-a53
t0=$(date +%s)
phase() { echo "== $1 (+$(( $(date +%s) - t0 )) s)"; }

phase "host tools"
need=()
for tool in mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support; do
  command -v "${tool%%:*}" > /dev/null || need+=("${tool##*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" arch-test > /dev/null
fi
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64

work="$(mktemp -d /tmp/appliance-arm64.XXXXXX)"
root="$work/rootfs"
cleanup() {
  for m in proc dev; do mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"; done
  # Never delete through a mount (the host's /dev is bound in): keep the tree if one is left.
  if grep -q " $root/" /proc/mounts; then echo "mounts left under $root: not deleting $work" >&2; return; fi
  rm -rf "$work"
}
trap cleanup EXIT

phase "source"
mkdir -p "$work/src"
if [ -n "${SOURCE_DIR:-}" ]; then cp -a "$SOURCE_DIR/." "$work/src/"; else git -C "$repo" archive HEAD | tar -x -C "$work/src"; fi
py=python3; [ -x "$repo/.venv/bin/python" ] && py="$repo/.venv/bin/python"
suite="${SUITE:-}"
if [ -z "$suite" ]; then
  if "$py" - "$work/src/pyproject.toml" <<'PY'
import sys, tomllib
from pip._vendor.packaging.specifiers import SpecifierSet
spec = tomllib.load(open(sys.argv[1], "rb"))["project"].get("requires-python", "")
sys.exit(0 if SpecifierSet(spec).contains("3.13.0") else 1)
PY
  then suite=trixie; else suite=bookworm; echo "bookworm: pyproject.toml's requires-python excludes trixie's Python 3.13"; fi
fi

ca="$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().openssl_cafile)')"
[ -f "${PIP_CERT:-}" ] && ca="$PIP_CERT"

# pip inside the rootfs reaches the index the way the host does: the host's CA bundle (which may
# hold a proxy's CA), and none of the host's other pip settings (local wheel dirs, constraints).
ca_in_root=/etc/ssl/certs/host-ca.pem
# No bytecode compiled under emulation (minutes for the whole venv; the image check measures it:
# about 45-50 MB on top of the size reported here).
pip_env="PIP_CERT=$ca_in_root SSL_CERT_FILE=$ca_in_root REQUESTS_CA_BUNDLE=$ca_in_root PIP_DISABLE_PIP_VERSION_CHECK=1 COMPILE_BYTECODE=0"
[ -n "${PIP_INDEX_URL:-}" ] && pip_env="$pip_env PIP_INDEX_URL=$PIP_INDEX_URL"

phase "arm64 $suite root filesystem and install steps (emulated)"
build_start=$(date +%s)
mmdebstrap --quiet --variant=minbase --architectures=arm64 --include=python3,python3-venv \
  --customize-hook="mkdir -p \"\$1/src\" && cp -a '$work/src/.' \"\$1/src/\"" \
  --customize-hook="cp '$ca' \"\$1/etc/ssl/certs/host-ca.pem\" && cp /etc/resolv.conf \"\$1/etc/resolv.conf\"" \
  --customize-hook='chroot "$1" sh /src/docker/install-runtime-deps.sh' \
  --customize-hook="chroot \"\$1\" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root $pip_env sh /src/docker/install-app.sh /src /opt/appliance" \
  "$suite" "$root" "$mirror"
build_s=$(( $(date +%s) - build_start ))

phase "trim what a run does not need"
cp "$root/src/tests/fixtures/hey_jarvis_what_time.wav" "$root/src/tests/fixtures/negative.wav" "$work/"
rm -rf "$root/src" "$root/etc/ssl/certs/host-ca.pem" "$root/var/cache/apt/"* "$root/var/lib/apt/lists/"* \
  "$root/usr/share/doc/"* "$root/usr/share/man/"* "$root/usr/share/locale/"* "$root/root/.cache"
mkdir -p "$root/samples" && cp "$work/hey_jarvis_what_time.wav" "$work/negative.wav" "$root/samples/"
size_mb=$(du -sx --block-size=1M "$root" | cut -f1)
venv_mb=$(du -sx --block-size=1M "$root/opt/appliance" | cut -f1)

phase "run the appliance on emulated arm64 (Cortex-A53)"
checks_start=$(date +%s)
# /proc and /dev only: with the host's /sys, LiteRT's CPU detection crashes under qemu-user.
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
run() { chroot "$root" env -i PATH=/opt/appliance/bin:/usr/bin:/bin HOME=/root "$@"; }
run uname -m | grep -qx aarch64
run python -c 'import appliance, platform, sys; print("appliance imported on", platform.machine(), "Python", sys.version.split()[0])'
# gpiozero's pin driver on a Pi (Pi 5 included): the real lgpio module (its placeholder 0.0.0.2 is empty).
run python -c 'import lgpio, gpiozero.pins.lgpio; assert hasattr(lgpio, "gpiochip_open"); print("lgpio", lgpio.__file__)'
# The pulse backend: soundcard's cffi loads libpulse (importing soundcard itself needs a running server).
run python -c 'import cffi; cffi.FFI().dlopen("libpulse.so.0"); print("libpulse loads through cffi")'
config="$(run env OPENAI_API_KEY=sk-secret-arm64-check appliance config)"
echo "$config" | python3 -c 'import json,sys; c=json.load(sys.stdin); assert c["openai_api_key"]=="********", c; print("config ok: model", c["realtime"]["model"], "wake", c["wake"]["models"])'
if echo "$config" | grep -q sk-secret-arm64-check; then echo "the API key leaked into config output" >&2; exit 1; fi
scores="$(run appliance wakeword /samples/hey_jarvis_what_time.wav /samples/negative.wav 2>/dev/null)"
echo "$scores"
echo "$scores" | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
by_file = {r["file"].rsplit("/", 1)[-1]: r["scores"]["hey_jarvis"] for r in rows}
woke = {r["file"].rsplit("/", 1)[-1]: r["detected"]["hey_jarvis"] for r in rows}
assert by_file["hey_jarvis_what_time.wav"] >= 0.5 and woke["hey_jarvis_what_time.wav"], (by_file, woke)
assert by_file["negative.wav"] < 0.5 and not woke["negative.wav"], (by_file, woke)
assert all("verifier_scores" in r for r in rows), rows  # the bundled verifier loaded on arm64
print("wake word ok on arm64:", by_file)'
checks_s=$(( $(date +%s) - checks_start ))

echo "arm64 $suite rootfs: ${size_mb} MB (venv ${venv_mb} MB), build ${build_s} s, emulated checks ${checks_s} s, total $(( $(date +%s) - t0 )) s"
if [ "$size_mb" -gt "$limit_mb" ]; then
  echo "the arm64 root filesystem is over ${limit_mb} MB" >&2
  exit 1
fi
