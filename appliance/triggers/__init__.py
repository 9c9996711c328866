"""What starts a conversation: the wake word and the button, each producing the same `Wake` event.

`wakeword` (openWakeWord on LiteRT, with `verifier`, the bundled noise-trained second opinion for
hey_jarvis), `oww_loader` / `oww_memory` (loading openWakeWord without its heavy imports and with a
streaming-size memory), and `button` (gpiozero, with short/long press and push-to-talk release).
"""
