#!/usr/bin/env bash
# Bundle the Agents TypeScript SDK's realtime package (@openai/agents-realtime, npm) into the one
# browser file the device page loads: appliance/web/static/agents-realtime.js. The built file is
# committed, so a device never needs npm or Node; versions are pinned by
# scripts/browser-bundle/package-lock.json (npm ci), so a rebuild gives the same bytes.
#   scripts/build_browser_bundle.sh            rebuild the committed bundle
#   scripts/build_browser_bundle.sh --check    rebuild elsewhere; fail if it differs from the committed one (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
src="$repo/scripts/browser-bundle"
out="$repo/appliance/web/static/agents-realtime.js"

command -v npm > /dev/null || { echo "error: npm is needed (Debian: apt-get install nodejs npm)" >&2; exit 1; }
work="$(mktemp -d /tmp/appliance-bundle.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$src/entry.js" "$work/"
(cd "$work" && npm ci --silent --no-audit --no-fund > /dev/null)

target="$out"
[ "${1:-}" = "--check" ] && target="$work/agents-realtime.js"
"$work/node_modules/.bin/esbuild" "$work/entry.js" --bundle --format=esm --platform=browser --target=es2020 \
  --minify --legal-comments=eof --log-level=warning --outfile="$target"
for name in RealtimeAgent RealtimeSession OpenAIRealtimeWebSocket tool; do
  grep -q "as $name[,}]" "$target" || { echo "error: the bundle does not export $name" >&2; exit 1; }
done
version="$(node -p "require('$work/node_modules/@openai/agents-realtime/package.json').version")"
if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$target" "$out"; then
    echo "error: $out is not what scripts/build_browser_bundle.sh builds; rerun it and commit the result" >&2
    exit 1
  fi
  echo "bundle: the committed $out matches a fresh build (@openai/agents-realtime $version)"
else
  echo "bundle: $out ($(wc -c < "$target") bytes, @openai/agents-realtime $version)"
fi
