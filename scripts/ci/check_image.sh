#!/usr/bin/env bash
# Build the shipping image (docker/Dockerfile) and run it, with no daemon and no registry:
# Debian's podman (runc, the cgroupfs manager, a file events logger, explicit ulimits: this kind of
# machine has a hybrid cgroup layout, which crun refuses, and no CAP_SYS_RESOURCE), overlay storage
# private to the run, and a stand-in for the official python base image made with mmdebstrap
# (Debian's python linked at /usr/local/bin, as the official image has it; see docker/README.md).
#   scripts/ci/check_image.sh [SUITE:PYTHON ...]   default: bookworm:3.11 trixie:3.13
# A variant whose Python pyproject.toml's requires-python excludes is skipped, saying so.
# Checks on each image: OCI labels, uid 10001 with the audio and gpio groups, bytecode present,
# `config` masks the key, a wake-word scan, `appliance run` on a FIFO sound card with a read-only
# root, no capabilities, no network (as deploy/compose.yaml, minus the host network), /healthz 200
# through the image's HEALTHCHECK, and `podman stop` answered with exit 0 within 2 s.
# Env: IMAGE_CONTEXT=DIR builds DIR instead of the committed tree (git archive HEAD);
#      BASE_MAX_AGE_DAYS (7) before the cached stand-in base is rebuilt (security updates).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="$repo/build/ci-image"  # build/ is ignored by git
t0=$(date +%s)
phase() { echo "== $1 (+$(( $(date +%s) - t0 )) s)"; }
host_python="$repo/.venv/bin/python"  # the host's setup (scripts/setup.sh): the FIFO card, parsing
[ -x "$host_python" ] || { echo "run scripts/setup.sh first (the checks use .venv)" >&2; exit 1; }
variants=("$@")
[ "${#variants[@]}" -gt 0 ] || variants=(bookworm:3.11 trixie:3.13)

phase "host tools"
need=()
for tool in podman:podman buildah:buildah runc:runc mmdebstrap:mmdebstrap newuidmap:uidmap; do
  command -v "${tool%%:*}" > /dev/null || need+=("${tool##*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi

work="$(mktemp -d /var/tmp/appliance-image.XXXXXX)"
card_pid=""
cleanup() {
  [ -n "$card_pid" ] && kill "$card_pid" 2> /dev/null
  # Only this run's storage: never the machine's own /var/lib/containers.
  if [ "${CONTAINERS_STORAGE_CONF:-}" = "$work/storage.conf" ]; then
    podman rm -f -t 0 appliance-image-check > /dev/null 2>&1 || true
    podman system reset -f > /dev/null 2>&1 || true
  fi
  if grep -q " $work/" /proc/mounts; then echo "mounts left under $work: not deleting it" >&2; return; fi
  rm -rf "$work"
}
trap cleanup EXIT

# podman's configuration for this run only: nothing in /etc/containers or /var/lib/containers.
# Explicit ulimits: podman's defaults are higher than this process's, and raising them needs
# CAP_SYS_RESOURCE. nofile as this process has it; nproc at most 32768 (this sandbox refused
# 65536 even under its hard limit of 96362).
nproc="$(ulimit -Hu)"; { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
cat > "$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Sn):$(ulimit -Hn)", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$work/events.log"
EOF
cat > "$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
printf 'unqualified-search-registries = []\nshort-name-mode = "enforcing"\n' > "$work/registries.conf"
export CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf" \
  CONTAINERS_REGISTRIES_CONF="$work/registries.conf"

# pip inside the build reaches the index as the host does: the host's CA bundle (which may hold a
# proxy's CA) and index URL, mounted for the build's RUN steps only (not in any layer).
ca="$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().openssl_cafile)')"
[ -f "${PIP_CERT:-}" ] && ca="$PIP_CERT"
{ echo "[global]"; echo "cert = /etc/ssl/certs/host-ca.pem"; echo "disable-pip-version-check = true"
  [ -n "${PIP_INDEX_URL:-}" ] && echo "index-url = $PIP_INDEX_URL"; } > "$work/pip.conf"

phase "build context"
if [ -n "${IMAGE_CONTEXT:-}" ]; then
  context="$IMAGE_CONTEXT"
else
  context="$work/src"
  mkdir -p "$context"
  git -C "$repo" archive HEAD | tar -x -C "$context"
fi
version="$("$host_python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"].get("version", ""))' "$context/pyproject.toml")"
[ -n "$version" ] || version="$("$host_python" -c 'import importlib.metadata as m; print(m.version("appliance"))')"
revision="$(git -C "$repo" rev-parse HEAD)"
source_url="$(git -C "$repo" remote get-url origin 2> /dev/null || echo unknown)"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

allowed() {  # does pyproject.toml's requires-python admit this Python version?
  "$host_python" - "$context/pyproject.toml" "$1" <<'PY'
import sys, tomllib
from pip._vendor.packaging.specifiers import SpecifierSet
spec = tomllib.load(open(sys.argv[1], "rb"))["project"].get("requires-python", "")
sys.exit(0 if SpecifierSet(spec).contains(sys.argv[2] + ".0") else 1)
PY
}

base_image() {  # SUITE PY: a stand-in for python:PY-slim-SUITE, cached as a tarball under build/
  local suite="$1" py="$2" tarball="$cache/python-$2-slim-$1.tar"
  mkdir -p "$cache"
  if [ -z "$(find "$tarball" -mtime -"${BASE_MAX_AGE_DAYS:-7}" 2> /dev/null)" ]; then
    rm -f "$tarball"
    # The official slim image: Debian's minbase, ca-certificates, netbase, tzdata, Python at
    # /usr/local/bin with venv/ensurepip; no compiler. (Its pip is not used: install-app.sh makes a venv.)
    mmdebstrap --quiet --format=tar --variant=minbase --include="python$py,python$py-venv,ca-certificates,netbase,tzdata" \
      --customize-hook='for n in python3 python "python'"$py"'"; do ln -sf "/usr/bin/python'"$py"'" "$1/usr/local/bin/$n"; done' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      "$suite" "$tarball.part" "$mirror"
    mv "$tarball.part" "$tarball"
  fi
  podman import --quiet --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "localhost/python:$py-slim-$suite" > /dev/null
  echo "base: localhost/python:$py-slim-$suite ($(du -m "$tarball" | cut -f1) MB tarball)"
}

# The FIFO sound card (appliance.testing), fed and drained in real time on the host, its ALSA
# configuration mounted as the container's /etc/asound.conf, as an operator mounts a real one.
start_card() {
  local root="$1"
  mkdir -p "$root" && chmod 755 "$root"
  "$host_python" - "$root" <<'PY' &
import os, sys, time
from pathlib import Path
from appliance.testing.fifo_soundcard import FifoSoundCard
card = FifoSoundCard(Path(sys.argv[1])).open()
for p in (card.mic_path, card.speaker_path):
    os.chmod(p, 0o666)  # the container's uid 10001 reads the mic and writes the speaker
(Path(sys.argv[1]) / "ready").touch()
while True:
    time.sleep(1)
PY
  card_pid=$!
  for _ in $(seq 50); do [ -e "$root/ready" ] && break; sleep 0.1; done
  chmod 644 "$root/home/.asoundrc"
}

# As deploy/compose.yaml runs it: read-only root with a small /tmp, every capability dropped, no new
# privileges (podman's own extra tmpfs mounts of --read-only are turned off, Docker has none).
# No healthcheck timer (podman would ask systemd for one): the check runs the image's HEALTHCHECK
# command itself with `podman exec`.
run_flags=(--pull=never --no-healthcheck --network none --read-only --read-only-tmpfs=false --tmpfs /tmp:size=16m
  --cap-drop ALL --security-opt no-new-privileges)

check_variant() {
  local suite="$1" py="$2" image="localhost/appliance:$version-$1" start
  phase "$suite, Python $py: stand-in base image"
  base_image "$suite" "$py"

  phase "$suite, Python $py: podman build"
  start=$(date +%s)
  # Docker's image format: OCI's has no HEALTHCHECK.
  podman build --quiet --format docker --pull=never --network host -f "$context/docker/Dockerfile" \
    --build-arg "PYTHON_IMAGE=localhost/python:$py-slim-$suite" --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" --build-arg "CREATED=$created" --build-arg "SOURCE=$source_url" \
    --volume "$work/pip.conf:/etc/pip.conf:ro" --volume "$ca:/etc/ssl/certs/host-ca.pem:ro" \
    -t "$image" "$context" > /dev/null
  local build_s=$(( $(date +%s) - start ))
  local size_mb=$(( $(podman image inspect --format '{{.Size}}' "$image") / 1000000 ))
  local base_mb=$(( $(podman image inspect --format '{{.Size}}' "localhost/python:$py-slim-$suite") / 1000000 ))
  echo "built $image: ${size_mb} MB (${base_mb} MB of it the stand-in base) in ${build_s} s"

  phase "$suite, Python $py: image checks"
  podman image inspect --format '{{json .Labels}}' "$image" | "$host_python" -c '
import json, sys
labels = json.load(sys.stdin)
want = dict(zip(("version", "revision", "created"), sys.argv[1:]))
for key, value in want.items():
    got = labels.get("org.opencontainers.image." + key)
    assert got == value, (key, got, value)
print("labels ok:", {k: labels["org.opencontainers.image." + k] for k in want})' "$version" "$revision" "$created"
  # USER names the uid alone, so the runtime applies the groups /etc/group gives it (gpio too).
  local ids
  ids="$(podman run --rm "${run_flags[@]}" --entrypoint id "$image")"
  echo "$ids"
  echo "$ids" | grep -q '^uid=10001(appliance) gid=29(audio) groups=29(audio),997(gpio)$'
  podman run --rm "${run_flags[@]}" --entrypoint python "$image" -c '
import appliance.cli, importlib.util, os
pyc = importlib.util.cache_from_source(appliance.cli.__file__)
assert os.path.exists(pyc), "no bytecode: " + pyc
total = cached = 0
for top, dirs, files in os.walk("/opt/appliance"):
    size = sum(os.lstat(os.path.join(top, f)).st_size for f in files)
    total += size
    cached += size if os.path.basename(top) == "__pycache__" else 0
print(f"bytecode ok: {pyc}; the venv is {total / 1e6:.0f} MB, {cached / 1e6:.0f} MB of it bytecode")'
  # What the bytecode saves at each start: importing the CLI and the app with it, and with every
  # __pycache__ deleted first (as the image was before; by root: the venv is not the user's to change),
  # three interleaved pairs, medians.
  local import_s='import time; t = time.perf_counter(); import appliance.cli, appliance.app; print(time.perf_counter() - t)'
  local with=() without=()
  for _ in 1 2 3; do
    with+=("$(podman run --rm "${run_flags[@]}" --entrypoint python "$image" -c "$import_s")")
    without+=("$(podman run --rm --pull=never --no-healthcheck --network none --user 0 --entrypoint sh "$image" \
      -c "find /opt/appliance -name __pycache__ -type d -prune -exec rm -rf {} + && python -c '$import_s'")")
  done
  "$host_python" -c 'import statistics, sys; w, wo = (statistics.median(map(float, a.split())) for a in sys.argv[1:]); print(f"import appliance.cli + appliance.app: {w:.2f} s with bytecode, {wo:.2f} s without (medians of 3)")' \
    "${with[*]}" "${without[*]}"
  # The version and revision a fleet reads (CHANGELOG.md, appliance --version): the build's, not "unknown".
  local reported
  reported="$(podman run --rm "${run_flags[@]}" "$image" --version)"
  echo "$reported"
  echo "$reported" | grep -q "^appliance $version (revision $revision, Python $py" \
    || { echo "the image reports '$reported', not version $version revision $revision" >&2; exit 1; }
  local config
  config="$(podman run --rm "${run_flags[@]}" -e OPENAI_API_KEY=sk-secret-image-check "$image" config)"
  if echo "$config" | grep -q sk-secret-image-check; then echo "the API key leaked into config output" >&2; exit 1; fi
  echo "$config" | "$host_python" -c 'import json,sys; c=json.load(sys.stdin); assert c["openai_api_key"]=="********", c; print("config ok: key masked, model", c["realtime"]["model"])'
  podman run --rm "${run_flags[@]}" -v "$repo/tests/fixtures:/samples:ro" "$image" \
    wakeword /samples/hey_jarvis_what_time.wav /samples/negative.wav 2> /dev/null | "$host_python" -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
score = {r["file"].rsplit("/", 1)[-1]: r["scores"]["hey_jarvis"] for r in rows}
woke = {r["file"].rsplit("/", 1)[-1]: r["detected"]["hey_jarvis"] for r in rows}
assert score["hey_jarvis_what_time.wav"] >= 0.5 and woke["hey_jarvis_what_time.wav"], (score, woke)
assert score["negative.wav"] < 0.5 and not woke["negative.wav"], (score, woke)
print("wake word ok:", score)'

  phase "$suite, Python $py: appliance run (FIFO sound card, read-only root, no network)"
  local card="$work/card-$suite"
  start_card "$card"
  podman run -d --name appliance-image-check "${run_flags[@]}" -e OPENAI_API_KEY=sk-secret-image-check \
    -v "$card:$card" -v "$card/home/.asoundrc:/etc/asound.conf:ro" "$image" run > /dev/null
  local healthy=0 health_cmd=()
  mapfile -t health_cmd < <(podman image inspect --format '{{json .HealthCheck.Test}}' "$image" \
    | "$host_python" -c 'import json, sys; t = json.load(sys.stdin); assert t[0] == "CMD", t; print("\n".join(t[1:]))')
  for _ in $(seq 60); do
    if podman exec appliance-image-check "${health_cmd[@]}" > /dev/null 2>&1; then healthy=1; break; fi
    [ "$(podman inspect --format '{{.State.Running}}' appliance-image-check)" = true ] || break
    sleep 1
  done
  if [ "$healthy" != 1 ]; then podman logs appliance-image-check >&2; echo "the image's HEALTHCHECK never passed" >&2; exit 1; fi
  podman exec appliance-image-check python -c '
import urllib.request
r = urllib.request.urlopen("http://127.0.0.1:9090/healthz", timeout=4)
assert r.status == 200, r.status
status = dict(line.split(":", 1) for line in open("/proc/1/status"))
uid, groups, caps = status["Uid"].split()[0], status["Groups"].split(), status["CapEff"].strip()
assert uid == "10001" and "29" in groups and "997" in groups and int(caps, 16) == 0, (uid, groups, caps)
print("run ok: HEALTHCHECK passed, /healthz 200; the appliance (pid 1) runs as uid", uid, "groups", groups, "capabilities", caps)'
  # Idle RSS as a device sees it (no libasound2-plugins in the image, unlike a dev machine): once the
  # SDK's background preload has logged `sdk_loaded`, 2 s to settle, the median of 3 reads 1 s apart.
  for _ in $(seq 60); do podman logs appliance-image-check 2>&1 | grep -q '"event": *"sdk_loaded"' && break; sleep 1; done
  sleep 2
  podman exec appliance-image-check python -c '
import statistics, time
def mb(path, key):
    return next(int(l.split()[1]) for l in open(path) if l.startswith(key + ":")) / 1024
reads = []
for _ in range(3):
    reads.append((mb("/proc/1/status", "VmRSS"), mb("/proc/1/smaps_rollup", "Anonymous")))
    time.sleep(1)
rss, anon = statistics.median(r for r, _ in reads), statistics.median(a for _, a in reads)
print(f"idle RSS in the image: {rss:.1f} MB (anonymous {anon:.1f}, file-backed {rss - anon:.1f}; "
      f"reads {min(r for r, _ in reads):.1f}-{max(r for r, _ in reads):.1f}; target <= 150)")'
  local stopped_at finished code
  start=$(date +%s%N)
  podman stop -t 10 appliance-image-check > /dev/null
  stopped_at=$(date +%s%N)
  finished="$(podman inspect --format '{{.State.FinishedAt.UnixNano}}' appliance-image-check)"
  code="$(podman inspect --format '{{.State.ExitCode}}' appliance-image-check)"
  local stop_ms=$(( (stopped_at - start) / 1000000 )) exit_ms=$(( (finished - start) / 1000000 ))
  if podman logs appliance-image-check 2>&1 | grep -q sk-secret-image-check; then echo "the API key leaked into the logs" >&2; exit 1; fi
  podman logs appliance-image-check 2>&1 | tail -n 3
  # Where the stop's time went: SIGTERM to the appliance's own "stop" line, then to the exit.
  podman logs appliance-image-check 2>&1 | "$host_python" -c '
import datetime, json, sys
start, finished = int(sys.argv[1]), int(sys.argv[2])
for line in sys.stdin:
    if line.startswith("{") and json.loads(line).get("event") == "stop":
        ts = datetime.datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp() * 1e9
        print(f"stop: the \"stop\" line {(ts - start) / 1e6:.0f} ms after podman stop began, the exit {(finished - ts) / 1e6:.0f} ms later")' \
    "$start" "$finished"
  podman rm appliance-image-check > /dev/null
  kill "$card_pid" && wait "$card_pid" 2> /dev/null || true
  card_pid=""
  echo "stop: exit $code; the appliance exited ${exit_ms} ms after \`podman stop\` began, which returned after ${stop_ms} ms"
  if [ "$code" != 0 ] || [ "$stop_ms" -ge 2000 ]; then echo "podman stop: want exit 0 within 2 s" >&2; exit 1; fi
  echo "image $suite/Python $py: ${size_mb} MB (base ${base_mb} MB), built in ${build_s} s, checks passed"
  podman rmi -f "$image" "localhost/python:$py-slim-$suite" > /dev/null
}

for variant in "${variants[@]}"; do
  suite="${variant%%:*}" py="${variant##*:}"
  if ! allowed "$py"; then
    echo "== $suite, Python $py: skipped (pyproject.toml's requires-python excludes Python $py)"
    continue
  fi
  check_variant "$suite" "$py"
done
echo "image checks passed in $(( $(date +%s) - t0 )) s"
