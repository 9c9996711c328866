"""`release_alsa_probe`: ALSA's plugin libraries that PortAudio's device probe loaded are unloaded,
and streams opened afterwards still work on the (FIFO test) sound card.

Each check runs in a fresh interpreter: the probe happens once, at `import sounddevice`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from appliance.testing.fifo_soundcard import FifoSoundCard

_SCRIPT = textwrap.dedent("""
    import json, sys
    import sounddevice as sd
    from appliance.heap import release_alsa_probe

    def plugins():
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if "libasound_module_" in line})

    before = plugins()
    released = release_alsa_probe()
    after = plugins()
    with sd.InputStream(device="mic", channels=1, samplerate=16000, dtype="int16") as stream:
        frames, _ = stream.read(1600)
    with sd.OutputStream(device="speaker", channels=1, samplerate=16000, dtype="int16") as out:
        out.write(frames)
    print(json.dumps({"before": before, "released": released, "after": after, "read": len(frames),
                      "devices": [d["name"] for d in sd.query_devices()]}))
""")


def _run(card: FifoSoundCard, script: str) -> dict[str, object]:
    env = {**os.environ, **card.env}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_probe_plugins_are_unloaded_and_streams_still_open(card: FifoSoundCard) -> None:
    result = _run(card, _SCRIPT)
    assert result["released"] is True
    assert result["after"] == [], result["before"]
    # The libraries a stream needs come back when it opens (the `file`/`null` PCMs are built in).
    assert result["read"] == 1600
    assert "mic" in result["devices"] and "speaker" in result["devices"]  # type: ignore[operator]


def test_nothing_to_release_without_portaudio() -> None:
    script = "from appliance.heap import release_alsa_probe; import sys; " \
             "print(release_alsa_probe(), 'sounddevice' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["False", "False"]
