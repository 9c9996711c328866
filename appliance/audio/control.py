"""PortAudio's control calls (open, close, rescan) off the event loop, with a timeout.

On a Pi, ALSA's error paths after a USB power cycle can hang inside PortAudio. Run on the event-loop
thread, such a call would freeze the appliance and leave SIGTERM unanswered until SIGKILL. Here each
call runs on a daemon thread of its own (one at a time); the loop waits for it at most `timeout_s`.
A call that never returns is abandoned (its thread cannot be killed), later calls are refused with
a clear error until it does return, and a late result is handed to `discard` (to close what it opened).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from .devices import AudioDeviceError

T = TypeVar("T")


class _Call(Generic[T]):
    def __init__(self, what: str, fn: Callable[[], T], discard: Callable[[T], None] | None) -> None:
        self.what = what
        self.fn = fn
        self.discard = discard
        self.lock = threading.Lock()
        self.abandoned = False
        self.done = threading.Event()


class AudioControl:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._running: _Call[object] | None = None

    @property
    def hung(self) -> str | None:
        """What an abandoned call was doing, while it has still not returned."""
        running = self._running
        return running.what if running is not None and not running.done.is_set() else None

    async def call(self, what: str, fn: Callable[[], T], discard: Callable[[T], None] | None = None) -> T:
        """Run `fn` off the loop. Any failure comes back as `AudioDeviceError` naming `what`."""
        if (hung := self.hung) is not None:
            raise AudioDeviceError(f"the audio system is not answering ({hung} has not returned)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call: _Call[T] = _Call(what, fn, discard)
        self._running = call  # type: ignore[assignment]

        def deliver(result: object, error: BaseException | None) -> None:
            if future.done() or call.abandoned:  # timed out meanwhile: close what it opened
                if error is None and discard is not None and call.abandoned:
                    with contextlib.suppress(Exception):
                        discard(result)  # type: ignore[arg-type]
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        def work() -> None:
            result: object = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:
                error = exc
            with call.lock:
                late = call.abandoned
            call.done.set()
            if late:  # nobody waits any more: close what it opened
                if error is None and discard is not None:
                    with contextlib.suppress(Exception):
                        discard(result)  # type: ignore[arg-type]
                return
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                loop.call_soon_threadsafe(deliver, result, error)

        threading.Thread(target=work, name="audio-control", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            self._abandon(call, future)
            raise AudioDeviceError(
                f"{what} did not return within {self.timeout_s:g} s (the audio system hangs)"
            ) from None
        except asyncio.CancelledError:
            self._abandon(call, future)
            raise
        except AudioDeviceError:
            raise
        except Exception as exc:
            raise AudioDeviceError(f"{what} failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _abandon(call: _Call[T], future: asyncio.Future[T]) -> None:
        with call.lock:
            call.abandoned = True
        # Finished just now: its result is ours to discard.
        if future.done() and not future.cancelled() and future.exception() is None and call.discard is not None:
            with contextlib.suppress(Exception):
                call.discard(future.result())
