"""`appliance check`: a self-test an installer runs first. One pass/fail line per part."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .settings import Settings, packaged_default


@dataclass
class Result:
    part: str
    ok: bool
    detail: str


def _audio(settings: Settings) -> list[Result]:
    from .audio.backends import backend_for
    from .audio.devices import find_device, pick_rate

    a = settings.audio
    results: list[Result] = []
    try:
        backend = backend_for(a)
        in_dev = find_device(a.input_device, "input", backend)
        in_rate = pick_rate(in_dev, "input", a.input_channel + 1, a.input_rate, backend)
        out_dev = find_device(a.output_device, "output", backend)
        out_rate = pick_rate(out_dev, "output", 1, a.output_rate, backend)
    except Exception as exc:
        return [Result("audio devices", False, str(exc))]
    results.append(Result("audio devices", True, f"in {in_dev.name!r} @ {in_rate} Hz ch {a.input_channel}; "
                                                  f"out {out_dev.name!r} @ {out_rate} Hz ({backend.name})"))
    try:
        t = np.arange(int(out_rate * 0.5)) / out_rate
        beep = (np.sin(2 * np.pi * 660 * t) * 0.3 * 32767 * np.hanning(t.size)).astype(np.int16)
        backend.play(out_dev, beep, out_rate)
        results.append(Result("speaker", True, "played a 0.5 s tone"))
    except Exception as exc:
        results.append(Result("speaker", False, f"cannot play: {exc}"))
    try:
        settle = int(in_rate * 0.25)  # devices may pop or replay buffers as they start
        rec = backend.record(in_dev, int(in_rate * 2) + settle, in_rate, a.input_channel + 1)[settle:, a.input_channel]
        rms = float(np.sqrt(np.mean(rec.astype(np.float64) ** 2)))
        dbfs = 20 * np.log10(max(rms, 1e-9) / 32768)
        peak = int(np.abs(rec.astype(np.int32)).max())
        ok = int(np.ptp(rec)) > 0  # a live microphone always moves; a muted or dead one is flat
        detail = f"2 s recorded: level {dbfs:.1f} dBFS, peak {peak}"
        detail += "" if ok else " (no signal: muted or dead mic?)"
        results.append(Result("microphone", ok, detail))
    except Exception as exc:
        results.append(Result("microphone", False, f"cannot record: {exc}"))
    return results


#: The bundled sample each model is known to wake on (its engine's own; see scripts/make_wake_fixtures.sh).
_WAKE_SAMPLES = {
    "hey_jarvis": ("samples/hey_jarvis.wav", "hey jarvis"),
    "okay_nabu": ("samples/okay_nabu.wav", "okay nabu"),
    "micro:okay_nabu": ("samples/okay_nabu.wav", "okay nabu"),
}


def _wakeword(settings: Settings) -> list[Result]:
    from .triggers.wake_scan import scan_file
    from .triggers.wakeword import WakeWordDetector

    try:
        detector = WakeWordDetector(
            settings.wake.models, settings.wake.threshold_for(), seed=0, verify=settings.wake.verifier
        )
    except Exception as exc:
        return [Result("wake word", False, str(exc))]
    tested = [m for m in detector.models if m in _WAKE_SAMPLES]
    if not tested:
        return [Result("wake word", True, f"models {', '.join(detector.models)} loaded (no bundled sample for them)")]
    results: list[Result] = []
    for model in tested:
        sample, phrase = _WAKE_SAMPLES[model]
        scan = scan_file(packaged_default(sample), detector)
        detail = f"{model}: bundled {phrase!r} sample scored {scan.scores[model]:.2f}"
        if model in scan.verifier_scores:
            detail += f" (verifier {scan.verifier_scores[model]:.2f})"
        ok = scan.woke(model)
        results.append(Result("wake word", ok, detail + ("" if ok else ": no wake")))
    return results


def _pixels(settings: Settings) -> Result:
    """Each state's animation for a moment, then off: the installer sees every pixel light."""
    from .indicators.pixels import PixelRing
    from .state import State

    try:
        ring = PixelRing(settings.leds)
    except Exception as exc:
        return Result("leds", False, f"APA102 pixels: {exc}")
    try:
        for state in (State.WAKING, State.LISTENING, State.THINKING, State.SPEAKING, State.ERROR):
            ring.show(state)
            time.sleep(0.4)
        frames = ring.frames_written
    finally:
        ring.close()
    ok = frames > 0
    detail = f"{settings.leds.count} APA102 pixels: {frames} frames written, then off"
    return Result("leds", ok, detail if ok else "no frame was written (see the log)")


def _gpio(settings: Settings) -> list[Result]:
    results: list[Result] = []
    from .indicators.leds import StatusLeds

    if settings.leds.type == "apa102":
        results.append(_pixels(settings))
    elif StatusLeds.configured(settings.leds):
        try:
            leds = StatusLeds(settings.leds)
            leds.device.blink(on_time=0.2, off_time=0.2, n=3, background=False)  # type: ignore[call-arg]
            leds.close()
            results.append(Result("leds", True, "blinked 3 times"))
        except Exception as exc:
            results.append(Result("leds", False, str(exc)))
    else:
        results.append(Result("leds", True, "none configured"))
    if settings.button.pin is not None:
        try:
            from gpiozero import Button

            button = Button(settings.button.pin, pull_up=settings.button.pull_up)
            state = "pressed" if button.is_pressed else "released"
            button.close()
            results.append(Result("button", True, f"GPIO{settings.button.pin} reads {state}"))
        except Exception as exc:
            results.append(Result("button", False, str(exc)))
    else:
        results.append(Result("button", True, "none configured"))
    return results


def run_checks(settings: Settings, out: Callable[[str], None] = print) -> int:
    results: list[Result] = []
    for part in (_audio, _wakeword, _gpio):
        started = time.monotonic()
        for r in part(settings):
            results.append(r)
            out(f"{'PASS' if r.ok else 'FAIL'}  {r.part:<14} {r.detail}  ({time.monotonic() - started:.1f} s)")
    failed = [r.part for r in results if not r.ok]
    out(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
