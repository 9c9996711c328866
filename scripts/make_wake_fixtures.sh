#!/usr/bin/env bash
# Regenerate the wake-word WAV fixtures in tests/fixtures/wake/ (16 kHz, mono, 16-bit PCM).
#
# Needs Debian's espeak-ng and sox. Output is deterministic for a given espeak-ng/sox version
# (Debian bookworm: espeak-ng 1.51, sox 14.4.2).
#
#   pos/  "hey jarvis" / "hey, jarvis": voices en, en-us, en-gb-x-rp, en-gb-scotland, each with the
#         default and the +f2 (female) variant, speeds 130/160/190 words per minute, leading and
#         trailing silence trimmed. The comma variant is made at 160 and 190 only: at 130 wpm
#         espeak-ng's comma is a ~0.5 s pause (see scripts/wake_accuracy.py --sweep for that case).
#   neg/  unrelated sentences and near misses ("hey Travis", "harvest", "jars", another wake word),
#         several voices. scripts/wake_accuracy.py builds its >= 10 min false-wake stream from them.
#   ../okay_nabu/  "okay nabu" for the microWakeWord engine (micro:okay_nabu): the same four voices,
#         default and +f2, at 160 and 190 wpm; outside wake/ so the openWakeWord reference
#         (tests/test_wake_reference.py) does not cover them. The en-us 160 wpm clip is also
#         appliance/defaults/samples/okay_nabu.wav, the sample `appliance check` plays to micro:okay_nabu.
#         okay_nabu/reply/ holds a 24 kHz answer that says "okay nabu" (the self-wake test's). These
#         are made without dither (sox -D), so they regenerate byte for byte; the wake/ clips were made
#         with sox's random dither and do not.
#
# tests/test_wake_reference.py holds the wake-word pipeline to openWakeWord's own scores on these clips:
# after regenerating them, rerun scripts/wake_reference_scores.py (see its docstring) and commit
# tests/fixtures/wake_reference.npz with them.
#
# Usage: scripts/make_wake_fixtures.sh [OUT_DIR]
set -euo pipefail

out="${1:-$(dirname "$0")/../tests/fixtures/wake}"
nabu="$out/../okay_nabu"
mkdir -p "$out/pos" "$out/neg" "$nabu"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# say VOICE SPEED TEXT OUT.wav : synthesize, convert to 16 kHz mono s16, trim silence at both ends
say() {
    espeak-ng -v "$1" -s "$2" -w "$tmp/raw.wav" "$3"
    sox "$tmp/raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$4" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.05 0.05
}

# say_exact VOICE SPEED TEXT RATE OUT.wav : as say, at RATE, without dither
say_exact() {
    espeak-ng -v "$1" -s "$2" -w "$tmp/raw.wav" "$3"
    sox -D "$tmp/raw.wav" -r "$4" -c 1 -b 16 -e signed-integer "$5" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.05 0.05
}

rm -f "$out"/pos/*.wav "$out"/neg/*.wav "$nabu"/*.wav

for voice in en en-us en-gb-x-rp en-gb-scotland; do
    for variant in "" "+f2"; do
        tag="${voice}${variant/+/_}"
        for speed in 130 160 190; do
            say "$voice$variant" "$speed" "hey jarvis" "$out/pos/${tag}_${speed}_plain.wav"
            if [ "$speed" != 130 ]; then
                say "$voice$variant" "$speed" "hey, jarvis" "$out/pos/${tag}_${speed}_comma.wav"
            fi
        done
    done
done

for voice in en en-us en-gb-x-rp en-gb-scotland; do
    for variant in "" "+f2"; do
        for speed in 160 190; do
            say_exact "$voice$variant" "$speed" "okay nabu" 16000 "$nabu/${voice}${variant/+/_}_${speed}.wav"
        done
    done
done
mkdir -p "$nabu/reply"
say_exact en 160 "I'm your kitchen helper. Whenever you need me, just say: okay nabu. And I will listen." \
    24000 "$nabu/reply/reply_says_okay_nabu_24k.wav"
if [ -z "${1:-}" ]; then
    cp "$nabu/en-us_160.wav" "$(dirname "$0")/../appliance/defaults/samples/okay_nabu.wav"
fi

i=0
while IFS='|' read -r voice speed text; do
    i=$((i + 1))
    say "$voice" "$speed" "$text" "$out/neg/$(printf '%02d' "$i")_${voice/+/_}.wav"
done <<'SENTENCES'
en-us|165|What time is it in Tokyo right now?
en-gb-x-rp|150|Please turn off the lights in the kitchen.
en|175|The weather tomorrow will be cloudy with light rain.
en-us+f2|160|Hey Travis, can you pass me the salt?
en-gb-scotland|160|Harvest season starts in September.
en-us+m3|170|I bought two jars of jam at the market.
en+f2|160|Hey there, how are you doing today?
en-gb-x-rp+m3|165|Remind me to call my sister this evening.
en-us|160|Hey Mycroft, play some music.
en-gb-scotland+f2|150|Charles and Davis are driving to Paris.
SENTENCES

echo "wrote $(ls "$out/pos" | wc -l) positive and $(ls "$out/neg" | wc -l) negative clips to $out"
echo "wrote $(ls "$nabu" | wc -l) okay nabu clips to $nabu"
du -sh "$out"
