"""What starts a conversation: the wake word and the button, each producing the same `Wake` event.

The wake-word stack, bottom up: `wake_models` (which model files: the bundled openWakeWord models of
pyopen-wakeword or paths, and microWakeWord's `micro:` models), `litert` (one fixed-shape LiteRT
interpreter per model file),
`features` (the streaming feature pipeline: mel spectrogram, then speech embeddings),
`classifiers` (a wake-word model's score from the last embeddings), `engines/` (the engine
interface, the openWakeWord engine built from the two, microWakeWord's engine, and the set that
runs both), `verifier` (the bundled noise-trained
second opinion for hey_jarvis, on the same embeddings), `wakeword` (the streaming detector: wake
rule, refractory, verifier), `wake_scan` (scoring WAV files, the `appliance wakeword` command),
`self_wake` (ignoring a wake word that the appliance's own speaker said), `native_stderr` (keeping
LiteRT's native INFO line out of stderr), and `button` (gpiozero, with short/long press and
push-to-talk release).
"""
