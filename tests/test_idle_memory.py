"""What an idle `appliance run` holds: the conversation layer imports the Agents SDK only when asked
(`conversation/sdk.py`), the import runs off the event loop, and freed heap goes back (`heap.py`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import platform

import pytest

from appliance import heap
from appliance.conversation import sdk
from appliance.events import ConversationEnded, StateChanged
from tests.e2e_support import python_json

SDK_PACKAGES = ("agents", "openai", "mcp", "mcp_types", "cryptography")



def test_what_run_imports_before_listening_leaves_the_sdk_out() -> None:
    loaded = python_json(
        "import json, sys\n"
        "import appliance.cli, appliance.app, appliance.web.server\n"
        "import appliance.conversation.session, appliance.conversation.mcp, appliance.conversation.agent\n"
        f"print(json.dumps([m for m in {SDK_PACKAGES!r} if m in sys.modules]))\n"
    )
    assert loaded == []


def test_load_sdk_imports_once_off_the_loop_for_every_caller() -> None:
    result = python_json(
        "import asyncio, json\n"
        "from appliance.conversation import sdk\n"
        "calls = []\n"
        "real = sdk._import_sdk\n"
        "sdk._import_sdk = lambda mcp=False: (calls.append(1), real(mcp))\n"
        "async def main():\n"
        "    ticks = 0\n"
        "    async def tick():\n"
        "        nonlocal ticks\n"
        "        while True:\n"
        "            await asyncio.sleep(0.01)\n"
        "            ticks += 1\n"
        "    ticker = asyncio.create_task(tick())\n"
        "    await asyncio.sleep(0)\n"
        "    await asyncio.gather(sdk.load_sdk(), sdk.load_sdk(), sdk.load_sdk())\n"
        "    ticker.cancel()\n"
        "    await sdk.load_sdk()  # loaded: returns at once\n"
        "    return ticks\n"
        "ticks = asyncio.run(main())\n"
        "print(json.dumps({'calls': len(calls), 'loaded': sdk.sdk_loaded(), 'ticks': ticks}))\n"
    )
    assert result["calls"] == 1
    assert result["loaded"] is True
    assert result["ticks"] > 0  # the loop kept running while the SDK imported


MCP_HEAVY = ("mcp.client", "mcp.server", "cryptography")  # what mcp's package init brings


def test_the_sdk_without_mcp_servers_leaves_mcp_s_client_and_server_out() -> None:
    result = python_json(
        "import asyncio, json, sys\n"
        "from appliance.conversation import sdk\n"
        "asyncio.run(sdk.load_sdk())\n"
        "import agents.realtime\n"
        f"print(json.dumps({{'loaded': sdk.sdk_loaded(), 'heavy': [m for m in {MCP_HEAVY!r} if m in sys.modules],\n"
        "                  'runner': agents.realtime.RealtimeRunner.__name__}))\n"
    )
    assert result == {"loaded": True, "heavy": [], "runner": "RealtimeRunner"}


def test_mcp_works_as_usual_once_used_after_a_deferred_init() -> None:
    result = python_json(
        "import asyncio, json, sys\n"
        "from appliance.conversation import sdk\n"
        "asyncio.run(sdk.load_sdk())\n"
        "import mcp\n"
        "deferred = 'mcp.client.session' not in sys.modules\n"
        "from mcp import ClientSession, Tool\n"  # a name looked up on the package runs its init
        "import mcp.types\n"
        "asyncio.run(sdk.load_sdk(mcp=True))\n"
        "from agents.mcp import MCPServerStdio\n"
        "print(json.dumps({'deferred': deferred, 'session': ClientSession.__module__,\n"
        "                  'tool': Tool is mcp.types.Tool, 'all': 'stdio_client' in mcp.__all__,\n"
        "                  'missing': hasattr(mcp, 'no_such_name'), 'hook_left': '__getattr__' in vars(mcp),\n"
        "                  'mcp_loaded': sdk.sdk_loaded(mcp=True), 'server': MCPServerStdio.__name__}))\n"
    )
    assert result == {"deferred": True, "session": "mcp.client.session", "tool": True, "all": True,
                      "missing": False, "hook_left": False, "mcp_loaded": True, "server": "MCPServerStdio"}


def test_mcp_s_init_is_not_deferred_once_it_ran() -> None:
    result = python_json(
        "import json, sys\n"
        "import mcp\n"
        "from appliance.conversation import sdk\n"
        "print(json.dumps({'deferred': sdk.defer_mcp_init(), 'same': sys.modules['mcp'] is mcp}))\n"
    )
    assert result == {"deferred": False, "same": True}


async def test_preload_waits_until_ready_then_loads_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    ready = False

    async def open_devices() -> None:
        nonlocal ready
        await asyncio.sleep(0.3)
        ready = True

    caplog.set_level(logging.INFO, logger="appliance.conversation")
    opener = asyncio.create_task(open_devices())
    gc.unfreeze()
    try:
        await sdk.preload_sdk(lambda: ready)
        assert gc.get_freeze_count() > 0  # the SDK's objects are left out of the collector's walks
    finally:
        gc.unfreeze()
    await opener
    assert ready
    assert sdk.sdk_loaded()
    loaded = [r for r in caplog.records if getattr(r, "event", None) == "sdk_loaded"]
    assert len(loaded) == 1 and loaded[0].load_s >= 0  # type: ignore[attr-defined]


async def test_a_failed_preload_is_logged_and_does_not_raise(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    def broken(mcp: bool = False) -> None:
        raise ImportError("no module named 'agents'")

    monkeypatch.setattr(sdk, "sdk_loaded", lambda mcp=False: False)
    monkeypatch.setattr(sdk, "_import_sdk", broken)
    monkeypatch.setattr(sdk, "_loading", {})
    caplog.set_level(logging.INFO, logger="appliance.conversation")
    await sdk.preload_sdk(lambda: True)
    failed = [r for r in caplog.records if getattr(r, "event", None) == "sdk_load_failed"]
    assert len(failed) == 1 and "ImportError" in failed[0].getMessage()
    monkeypatch.setattr(sdk, "_import_sdk", lambda mcp=False: None)  # a later conversation tries again
    await sdk.load_sdk()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_heap_is_released_where_the_c_library_can() -> None:
    assert heap.release_free_heap() is True


def test_without_malloc_trim_nothing_is_released(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoTrim:
        def __init__(self, _name: object) -> None:
            pass

    heap._malloc_trim.cache_clear()
    monkeypatch.setattr(heap.ctypes, "CDLL", NoTrim)
    try:
        assert heap.release_free_heap() is False
    finally:
        heap._malloc_trim.cache_clear()


def test_the_heap_is_trimmed_a_moment_after_each_conversation() -> None:
    class Loop:
        def __init__(self) -> None:
            self.later: list[tuple[float, object]] = []

        def call_later(self, delay: float, callback: object) -> None:
            self.later.append((delay, callback))

    loop = Loop()
    on_event = heap.trim_after_conversations(loop)  # type: ignore[arg-type]
    on_event(StateChanged(state="idle", previous="speaking"))
    assert loop.later == []
    on_event(ConversationEnded(reason="idle", duration_s=3.0, connect_ms=20.0, sent_audio_ms=900,
                               dropped_blocks=0, wake_to_open_ms=40.0))
    assert loop.later == [(heap.AFTER_CONVERSATION_S, heap.release_free_heap)]
