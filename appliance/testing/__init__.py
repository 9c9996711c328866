"""Test doubles that ship with the appliance, so `appliance bench` can measure on any machine:
a fake OpenAI Realtime server (real wire protocol over a real websocket on 127.0.0.1) and a
FIFO-backed ALSA sound card paced in real time, and a private PulseAudio daemon (pulse_server)."""
