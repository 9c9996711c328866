"""When a conversation ends by itself: nobody spoke for a while, it ran too long, the agent said
goodbye (and that was heard), or the server accepted the socket and never said a word.

Each is a coroutine `Conversation.run` starts as a task and cancels when the conversation ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..audio.playback import Player
from ..settings import Settings
from .outcomes import ConversationError, EndReason

GOODBYE_WAIT_S = 15  # longest a spoken goodbye may keep the conversation open


async def idle_or_too_long(
    settings: Settings, in_use: Callable[[], bool], touch: Callable[[], None], last_activity: Callable[[], float]
) -> EndReason:
    """Returns when nothing happened for `idle_timeout_s` (time `in_use` counts as activity) or the
    conversation passed `max_duration_s`."""
    timeout = settings.session.idle_timeout_s
    limit = settings.session.max_duration_s
    started = time.monotonic()
    while True:
        await asyncio.sleep(0.1)
        now = time.monotonic()
        if now - started > limit:
            return "max_duration"
        if in_use():
            touch()
            continue
        if now - last_activity() > timeout:
            return "idle_timeout"


async def server_silence(settings: Settings, heard_server: asyncio.Event) -> ConversationError | None:
    """A server (or a proxy before it) that accepts the websocket and then says nothing, not even
    `session.created`: the error to give up with after the connect timeout, instead of pretending to
    listen; None once it spoke."""
    timeout = settings.realtime.connect_timeout_s
    try:
        await asyncio.wait_for(heard_server.wait(), timeout)
    except TimeoutError:
        return ConversationError(
            "connect_timeout", f"the server accepted the connection but sent nothing in {timeout:.0f} s"
        )
    return None


async def goodbye_spoken(goodbye: asyncio.Event, player: Player) -> None:
    """Returns once the agent said goodbye and (bounded) more audio played and finished playing."""
    await goodbye.wait()
    written_at_goodbye = player.stats.written_samples
    deadline = time.monotonic() + GOODBYE_WAIT_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        spoke = player.stats.written_samples > written_at_goodbye
        if spoke and not player.busy:
            return
