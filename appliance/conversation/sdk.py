"""The Agents SDK, imported when the first conversation starts instead of at start-up.

`agents.realtime` brings `openai`, `mcp` (with its auth's `cryptography`) and a few thousand
pydantic models: about 80 MB of resident memory and over a second of import on a desktop CPU. An
appliance that never talks needs none of it, so the conversation layer imports the SDK inside the
functions that use it, and a conversation first waits for `load_sdk`, which runs the import on a
worker thread: the event loop (heartbeat, LEDs, the wake word's hand-offs) keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

# What one conversation needs; importing the first imports nearly all the rest.
SDK_MODULES = ("agents.realtime", "agents.realtime.config", "agents.realtime.model_inputs")


def sdk_loaded() -> bool:
    return all(name in sys.modules for name in SDK_MODULES)


def _import_sdk() -> None:
    for name in SDK_MODULES:
        importlib.import_module(name)


async def load_sdk() -> None:
    """Import the SDK off the event loop (at once when it already is)."""
    if not sdk_loaded():
        await asyncio.to_thread(_import_sdk)
