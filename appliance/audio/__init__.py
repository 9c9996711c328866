"""Sound in and out.

`devices` finds PortAudio devices and their rates; `control` runs PortAudio's blocking calls off
the event loop; `capture` (microphone stream) and `playback` (speaker jitter buffer, the playback
tracker's feed) are the two streams; `pipeline` is the microphone's worker thread (resampling, wake
word, echo handling, the model-bound sink); `resample` (soxr), `aec` (SpeexDSP echo canceller),
`reference` (what the speaker played, for the canceller), `formats` (rates and ms/samples), and
`wavfile` (one WAV reader).

Threads: PortAudio callbacks (`MicStream._callback`, `Player._callback`) only copy samples; the
pipeline's worker does the processing; everything else runs on the event loop.
"""
