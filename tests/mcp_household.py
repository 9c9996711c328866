"""A small real MCP server for tests (the MCP SDK's high-level `MCPServer`, FastMCP's successor).

    python tests/mcp_household.py stdio
    python tests/mcp_household.py http PORT     # streamable HTTP at /mcp; needs `Authorization: Bearer $TOKEN`

Tools (names prefixed with $TOOL_PREFIX): `pantry_count(item)` (a lookup), `whose_house()` (reads
the env it was given), `boom()` (raises), `slow(seconds)` (sleeps: for the tool timeout), `die()` (the process exits),
`grumble(text, times)` (writes `text` to stderr `times` times), `pid()` (its process id: a test can
stop the process to make it silent).

REFUSE_PING=1 makes it answer every `ping` with a JSON-RPC error (whatever protocol version was
negotiated) and write `ping refused` to stderr; STDERR_AT_START is written to stderr on start.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

PANTRY = {"eggs": 6, "flour": 2, "milk": 1}

server = MCPServer("household")
# Two copies of this server in one session need different tool names: TOOL_PREFIX sets them apart.
PREFIX = os.environ.get("TOOL_PREFIX", "")


@server.tool(name=f"{PREFIX}pantry_count")
def pantry_count(item: str) -> str:
    """How many of an item are in the pantry."""
    return f"{PANTRY.get(item.lower(), 0)} {item} in the pantry"


@server.tool(name=f"{PREFIX}whose_house")
def whose_house() -> str:
    """Whose house this is."""
    return f"the house of {os.environ.get('HOUSEHOLD_NAME', 'nobody')}"


@server.tool(name=f"{PREFIX}boom")
def boom() -> str:
    """Always fails (saying $BOOM_DETAIL too, when set)."""
    detail = os.environ.get("BOOM_DETAIL")
    raise RuntimeError(f"the pantry door is stuck ({detail})" if detail else "the pantry door is stuck")


@server.tool(name=f"{PREFIX}slow")
async def slow(seconds: float) -> str:
    """Takes its time."""
    await asyncio.sleep(seconds)
    return "done at last"


@server.tool(name=f"{PREFIX}grumble")
def grumble(text: str, times: int = 1) -> str:
    """Writes text to stderr (for the appliance's stderr log)."""
    for _ in range(times):
        print(text, file=sys.stderr, flush=True)
    return "grumbled"


@server.tool(name=f"{PREFIX}pid")
def pid() -> int:
    """This server's process id."""
    return os.getpid()


PING_REFUSED = -32050  # a server-defined error code: not "method not found", not a transport failure


async def refuse_ping(ctx: Any, call_next: Any) -> Any:
    if ctx.method == "ping":
        print("ping refused", file=sys.stderr, flush=True)
        raise MCPError(code=PING_REFUSED, message="this server does not answer pings")
    return await call_next(ctx)


if os.environ.get("REFUSE_PING") == "1":
    server.middleware.insert(0, refuse_ping)


def require_token(app: Any, token: str) -> Any:
    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization", b"").decode() != f"Bearer {token}":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorised"})
                return
        await app(scope, receive, send)

    return guarded


@server.tool(name=f"{PREFIX}die")
def die() -> str:
    """Ends this server's process (to test reconnection)."""
    os._exit(3)


def main() -> None:
    if os.environ.get("STDERR_AT_START"):
        print(os.environ["STDERR_AT_START"], file=sys.stderr, flush=True)
    if sys.argv[1] == "stdio":
        server.run("stdio")
        return
    import uvicorn

    app = server.streamable_http_app()
    uvicorn.run(require_token(app, os.environ["TOKEN"]), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
