#!/usr/bin/env bash
# The agent's answer that says the wake word, for the self-wake tests (tests/test_self_wake.py).
#
# Requires the Debian packages `espeak-ng` and `sox`. Run from anywhere:
#     scripts/make_self_wake_fixture.sh
# Writes tests/fixtures/reply_says_wake_word_24k.wav: 24 kHz mono pcm16, the fake Realtime server's
# answer format. The wake word comes about 3 s in, after the software echo canceller's warm-up
# (about 2 s of the agent's speech), so the test exercises a converged canceller. The commas give
# espeak-ng's "hey jarvis" the pause that makes openWakeWord score it as the wake word. Dither is off
# (-D) so a rerun with the same tool versions gives the same bytes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../tests/fixtures}"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install espeak-ng sox)" >&2; exit 1; }
done

espeak-ng -v en-us -s 160 -w "$tmp/reply.wav" \
    "I'm Jarvis, your kitchen helper. Whenever you need me, just say, hey jarvis, and I will listen."
sox -D -V1 "$tmp/reply.wav" -r 24000 -c 1 -b 16 -e signed-integer "$out/reply_says_wake_word_24k.wav" pad 0.05 0.3
printf '%s: %s s\n' reply_says_wake_word_24k.wav "$(soxi -D "$out/reply_says_wake_word_24k.wav")"
