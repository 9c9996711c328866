#!/usr/bin/env bash
# Regenerate the speech WAV fixtures in tests/fixtures/ with espeak-ng and sox.
#
# Requires the Debian packages `espeak-ng` and `sox`. Run from anywhere:
#     scripts/make_fixtures.sh
# The WAVs are committed; rerun this only to change them (and commit the result).
#
# Formats (decided here, relied on by tests/audio_files.py users):
#   * Microphone-side fixtures (hey_jarvis_what_time, what_time_only, negative) are
#     48 kHz, mono, signed 16-bit PCM WAV: real USB/I2S capture devices run at 48 kHz, so
#     the appliance's capture -> resample path (48 kHz -> 16 kHz wake word, 48 kHz -> 24 kHz
#     Realtime) is exercised exactly as on a device.
#   * reply_24k.wav is 24 kHz, mono, signed 16-bit PCM: the OpenAI Realtime API's pcm16
#     output format, used verbatim as the fake server's answer audio.
# Dither is disabled (-D) so regenerating with the same espeak-ng/sox versions gives
# byte-identical files (sox otherwise adds random TPDF dither when it resamples).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../tests/fixtures}"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install espeak-ng sox)" >&2; exit 1; }
done

# speak NAME TEXT RATE LEAD_S TRAIL_S: espeak-ng (en-us, speed 160) -> mono 16-bit RATE Hz,
# with LEAD_S seconds of silence before and TRAIL_S seconds after the speech.
speak() {
    local name="$1" text="$2" rate="$3" lead="$4" trail="$5"
    espeak-ng -v en-us -s 160 -w "$tmp/$name.raw.wav" "$text"
    sox -D -V1 "$tmp/$name.raw.wav" -r "$rate" -c 1 -b 16 -e signed-integer "$out/$name.wav" \
        pad "$lead" "$trail"
}

# The question alone, to correlate against the audio the fake server received.
speak what_time_only "what time is it" 48000 0.2 0.3
# Wake word + question: "hey jarvis," followed by exactly the samples of what_time_only, so
# the question inside it can be found bit for bit in what the server received. The comma
# gives the short natural pause that openWakeWord's hey_jarvis model needs to score espeak-ng's
# voice above 0.9; the 1.5 s+ trailing silence lets server-side VAD see the end of speech.
speak wake_part "hey jarvis," 48000 0.5 0
sox -D -V1 "$out/wake_part.wav" "$out/what_time_only.wav" "$out/hey_jarvis_what_time.wav" pad 0 1.3
rm "$out/wake_part.wav"
# No wake word: unrelated sentences for false-accept checks.
speak negative "the weather is nice today, please pass the salt." \
    48000 0.3 0.5
# The fake Realtime server's spoken answer (pcm16 24 kHz, as the real API sends).
speak reply_24k "It is ten past three." 24000 0.05 0.1
# An answer that says the wake word (tests/test_self_wake.py): it must never wake or interrupt the
# appliance. "hey jarvis" comes about 3 s in, after the echo canceller's ~2 s warm-up; the commas give
# it the pause that makes openWakeWord score espeak-ng's voice as the wake word.
speak reply_says_wake_word_24k \
    "I'm Jarvis, your kitchen helper. Whenever you need me, just say, hey jarvis, and I will listen." \
    24000 0.05 0.3

for f in "$out"/*.wav; do
    printf '%s: %s\n' "$(basename "$f")" "$(soxi -d "$f") $(soxi -r "$f") Hz $(soxi -s "$f") samples"
done
