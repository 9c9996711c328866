"""Giving the C heap's free pages back to the system.

glibc keeps memory that was freed inside its heap for reuse and returns it only from the top of
the heap. Start-up frees a lot in the middle: openWakeWord warms its feature models up on seconds
of audio at full batch size before the appliance rebuilds them at streaming size, once for the
detector and once for its self-wake twin, and the freed buffers (about 25 MB) would stay resident
for the process's life. `malloc_trim(0)` hands such pages back (it takes well under a millisecond
here). Where the C library has no `malloc_trim` (musl, macOS) this does nothing.

ALSA is the other start-up leftover: PortAudio's device probe (at `import sounddevice`) opens
every PCM that ALSA's configuration defines, which loads each plugin library with its dependencies
(with libasound2-plugins installed, `a52` alone brings libavcodec and some sixty libraries, 10 MB
resident here). ALSA caches the global configuration and those libraries until told to drop them;
the streams opened later read the configuration afresh and load only the plugins they use.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import sys
from collections.abc import Callable

from .events import ApplianceEvent, ConversationEnded

# After a conversation ends, its objects are freed once the appliance lets go of the conversation.
AFTER_CONVERSATION_S = 2.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (AttributeError, OSError):
        return None


def release_free_heap() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def release_alsa_probe() -> bool:
    """Drop ALSA's cached configuration and the plugin libraries the device probe loaded; False
    where PortAudio was not initialised over ALSA. Only while no stream is open (at start-up)."""
    if "sounddevice" not in sys.modules:
        return False
    try:  # only the copy PortAudio already loaded (RTLD_NOLOAD): never load ALSA for this
        asound = ctypes.CDLL("libasound.so.2", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        free_global = asound.snd_config_update_free_global
    except (AttributeError, OSError):
        return False
    return bool(free_global() == 0)


def trim_after_conversations(loop: asyncio.AbstractEventLoop) -> Callable[[ApplianceEvent], None]:
    """An event subscriber that releases the free heap a moment after each conversation ends
    (on `loop`: what a conversation freed, e.g. the SDK's session and its buffers)."""

    def on_event(event: ApplianceEvent) -> None:
        if isinstance(event, ConversationEnded):
            loop.call_later(AFTER_CONVERSATION_S, release_free_heap)

    return on_event
