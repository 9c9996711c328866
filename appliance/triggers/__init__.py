"""What starts a conversation: the wake word and the button, each producing the same `Wake` event.

`wakeword` (the streaming detector: openWakeWord on LiteRT, with `verifier`, the bundled
noise-trained second opinion for hey_jarvis), `wake_models` (which model files to load),
`wake_scan` (scoring WAV files, the `appliance wakeword` command), `self_wake` (ignoring a wake
word that the appliance's own speaker said), `oww_loader` / `oww_memory` (loading openWakeWord
without its heavy imports and with a streaming-size memory), `native_stderr` (keeping LiteRT's
native INFO line out of stderr), and `button` (gpiozero, with short/long press and push-to-talk
release).
"""
