"""The Agents SDK, imported off the event loop rather than by importing the conversation layer.

`agents.realtime` brings `openai` and a few thousand pydantic models: about 40 MB of resident
memory and 2–4 s of import on the shared x86 test machine (more on a Cortex-A53), and 25 MB more
with `mcp`'s client and server sides, which `defer_mcp_init` keeps out until an MCP server is made.
The conversation layer therefore imports the SDK only inside the functions that use it, and
`load_sdk` runs the import on a worker thread so the event loop (heartbeat, LEDs, the wake word's
hand-offs) keeps running meanwhile. `appliance run` preloads it this way once it is listening
(`preload_sdk`): deferring it to the first wake would keep those 40 MB out of an idle device that
has not talked yet, but that wake would wait for the import (measured: 2.1 s instead of 0.08 s to
the open session on x86).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable

from ..logs import log_event

log = logging.getLogger("appliance.conversation")

# What one conversation needs; importing the first imports nearly all the rest.
SDK_MODULES = ("agents.realtime", "agents.realtime.config", "agents.realtime.model_inputs")
# What connecting an MCP server needs besides (`mcp`'s own package init: its client and server sides).
MCP_MODULES = ("agents.mcp.server",)
PRELOAD_WAIT_S = 10.0  # the preload starts once the devices are open, or after this long

_defer_lock = threading.Lock()
_loading: dict[tuple[str, ...], tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}


def _modules(mcp: bool) -> tuple[str, ...]:
    return SDK_MODULES + MCP_MODULES if mcp else SDK_MODULES


def sdk_loaded(mcp: bool = False) -> bool:
    return all(name in sys.modules for name in _modules(mcp))


def defer_mcp_init() -> bool:
    """Make `mcp`'s package init run on first use of one of its names rather than at import.

    The SDK imports `mcp.shared.exceptions` at its own import time (`agents.mcp._compat`), even
    without MCP servers, and importing a submodule runs the package's `__init__` first: that one
    imports mcp's client and its whole server side (auth, `cryptography`, Starlette's routes), about
    25 MB that an appliance without MCP servers never uses. Here `mcp` is made a package whose
    submodules import as usual and whose `__init__` runs the first time a name is looked up on it
    (`from mcp import ClientSession`, as the SDK's MCP servers do), so nothing changes for code that
    uses it. False when `mcp` is already imported or not installed."""
    with _defer_lock:  # two loads at once (the preload, an MCP server's) make one package
        return _defer_mcp_init()


def _defer_mcp_init() -> bool:
    if "mcp" in sys.modules:
        return False
    spec = importlib.util.find_spec("mcp")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)
    lock = threading.RLock()
    state = {"started": False}

    def __getattr__(name: str) -> object:  # noqa: N807 (a module's attribute hook, PEP 562)
        with lock:
            if not state["started"]:  # a name looked up while the init runs is not there yet
                state["started"] = True
                try:
                    loader.exec_module(package)
                except BaseException:
                    state["started"] = False  # the next lookup tries again, as a new import would
                    raise
                if package.__dict__.get("__getattr__") is __getattr__:
                    del package.__dict__["__getattr__"]
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'mcp' has no attribute {name!r}") from None

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["mcp"] = package
    return True


def _import_sdk(mcp: bool = False) -> None:
    defer_mcp_init()  # with MCP servers too: `MCP_MODULES` then run mcp's init, after the SDK's import
    for name in _modules(mcp):
        importlib.import_module(name)


def _failed(import_done: asyncio.Future[None]) -> bool:
    return import_done.done() and (import_done.cancelled() or import_done.exception() is not None)


async def load_sdk(mcp: bool = False) -> None:
    """Import the SDK on a worker thread (at once when it already is), with its MCP clients when
    `mcp`. Callers that come while it is importing wait for the same import."""
    if sdk_loaded(mcp):
        return
    loop = asyncio.get_running_loop()
    key = _modules(mcp)
    loading = _loading.get(key)
    if loading is None or loading[0] is not loop or _failed(loading[1]):
        loading = _loading[key] = (loop, asyncio.ensure_future(asyncio.to_thread(_import_sdk, mcp)))
    await asyncio.shield(loading[1])


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
