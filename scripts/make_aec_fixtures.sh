#!/usr/bin/env bash
# Regenerate the speech-like WAV fixtures used by tests/test_aec.py and appliance.bench.aec.
# Needs Debian packages: espeak-ng sox. The outputs are committed; tests never run this script.
#   near_user.wav : the near-end "user" talking (female-ish variant, higher pitch)
#   far_agent.wav : the far-end "agent" audio that the speaker plays (male voice)
# Both: 24 kHz, mono, signed 16-bit PCM, exactly 4.0 s (padded/trimmed), peak-normalised to -3 dBFS.
set -euo pipefail
out="${1:-$(dirname "$0")/../tests/fixtures/aec}"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

make_one() {  # name voice pitch speed text
    local name="$1" voice="$2" pitch="$3" speed="$4" text="$5"
    espeak-ng -v "$voice" -p "$pitch" -s "$speed" -w "$tmp/$name.raw.wav" "$text"
    sox "$tmp/$name.raw.wav" -r 24000 -c 1 -b 16 -e signed-integer "$tmp/$name.24k.wav" rate -v 24000
    # pad generously then trim to exactly 4 s; normalise peak to -3 dBFS
    sox "$tmp/$name.24k.wav" "$out/$name.wav" pad 0.1 4 trim 0 4.0 gain -n -3
}

make_one near_user "en-us+f3" 70 150 \
    "Could you turn off the kitchen lights, please?"
make_one far_agent "en-gb" 40 160 \
    "Sure. Today is sunny and warm, with light winds."
ls -l "$out"
