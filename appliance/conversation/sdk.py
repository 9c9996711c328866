"""The Agents SDK, imported off the event loop rather than by importing the conversation layer.

`agents.realtime` brings `openai`, `mcp` (with its server side and its auth's `cryptography`) and a
few thousand pydantic models: about 60 MB of resident memory and 2–4 s of import on the shared
x86 test machine (more on a Cortex-A53). The conversation layer therefore imports the SDK only
inside the functions that use it, and `load_sdk` runs the import on a worker thread so the event
loop (heartbeat, LEDs, the wake word's hand-offs) keeps running meanwhile. `appliance run`
preloads it this way once it is listening (`preload_sdk`): deferring it to the first wake would
keep those 60 MB out of an idle device that has not talked yet, but that wake would wait for the
import (measured: 2.1 s instead of 0.08 s to the open session on x86).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import sys
import time
from collections.abc import Callable

from ..logs import log_event

log = logging.getLogger("appliance.conversation")

# What one conversation needs; importing the first imports nearly all the rest.
SDK_MODULES = ("agents.realtime", "agents.realtime.config", "agents.realtime.model_inputs")
PRELOAD_WAIT_S = 10.0  # the preload starts once the devices are open, or after this long

_loading: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None


def sdk_loaded() -> bool:
    return all(name in sys.modules for name in SDK_MODULES)


def _import_sdk() -> None:
    for name in SDK_MODULES:
        importlib.import_module(name)


def _failed(import_done: asyncio.Future[None]) -> bool:
    return import_done.done() and (import_done.cancelled() or import_done.exception() is not None)


async def load_sdk() -> None:
    """Import the SDK on a worker thread (at once when it already is). Callers that come while it
    is importing wait for the same import."""
    global _loading
    if sdk_loaded():
        return
    loop = asyncio.get_running_loop()
    if _loading is None or _loading[0] is not loop or _failed(_loading[1]):
        _loading = (loop, asyncio.ensure_future(asyncio.to_thread(_import_sdk)))
    await asyncio.shield(_loading[1])


async def preload_sdk(ready: Callable[[], bool], wait_s: float = PRELOAD_WAIT_S) -> None:
    """`load_sdk` in the background once start-up is over (`ready()`, e.g. the audio devices are
    open, or after `wait_s`), so it does not delay listening. A failure is logged (the first
    conversation then reports it the way any failed conversation is)."""
    deadline = time.monotonic() + wait_s
    while not ready() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    started = time.monotonic()
    try:
        await load_sdk()
    except Exception as exc:
        log_event(log, "sdk_load_failed", f"Agents SDK not loaded: {type(exc).__name__}: {exc}",
                  level=logging.ERROR)
        return
    # Like start-up's own objects (app.py freezes those), the SDK's modules and pydantic schemas live
    # as long as the process: frozen, the collector stops walking them in every full collection.
    gc.freeze()
    log_event(log, "sdk_loaded", "Agents SDK loaded", load_s=round(time.monotonic() - started, 2))
