#!/usr/bin/env bash
# Bundle the Agents TypeScript SDK's realtime package (@openai/agents-realtime, npm) into one
# browser file the appliance serves: appliance/web/static/agents-realtime.js. The built file is
# committed, so a device never needs npm; CI reruns this script to check that it still builds.
#   scripts/build_browser_bundle.sh            build (npm install into a temporary directory)
#   scripts/build_browser_bundle.sh --check    build into a temporary file and compare the exports
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

AGENTS_REALTIME_VERSION="0.20.0"
ESBUILD_VERSION="0.28.2"
out="$repo/appliance/web/static/agents-realtime.js"

work="$(mktemp -d /tmp/appliance-bundle.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > package.json <<JSON
{"name": "appliance-browser-bundle", "private": true, "type": "module"}
JSON
npm install --silent --no-audit --no-fund --ignore-scripts=false \
  "@openai/agents-realtime@$AGENTS_REALTIME_VERSION" "esbuild@$ESBUILD_VERSION" > /dev/null
# Only what the page uses: an agent, a session, and the WebSocket transport (not WebRTC), so the
# browser connects to the same URL as the device (and tests can point it at the fake server).
cat > entry.js <<'JS'
export { RealtimeAgent, RealtimeSession, OpenAIRealtimeWebSocket, tool } from "@openai/agents-realtime";
JS
target="$out"
[ "${1:-}" = "--check" ] && target="$work/agents-realtime.js"
./node_modules/.bin/esbuild entry.js --bundle --format=esm --platform=browser --target=es2020 --minify \
  --legal-comments=eof --log-level=warning --outfile="$target"
size=$(wc -c < "$target")
for name in RealtimeAgent RealtimeSession OpenAIRealtimeWebSocket tool; do
  grep -q "as $name" "$target" || { echo "error: $name is not exported by the bundle" >&2; exit 1; }
done
echo "bundle: $target ($size bytes, @openai/agents-realtime $AGENTS_REALTIME_VERSION)"
