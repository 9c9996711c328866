"""A small real MCP server for tests (the MCP SDK's high-level `MCPServer`, FastMCP's successor).

    python tests/mcp_household.py stdio
    python tests/mcp_household.py http PORT     # streamable HTTP at /mcp; needs `Authorization: Bearer $TOKEN`

Tools (names prefixed with $TOOL_PREFIX): `pantry_count(item)` (a lookup), `whose_house()` (reads
the env it was given), `boom()` (raises), `slow(seconds)` (sleeps: for the tool timeout), `die()` (the process exits).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

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
    """Always fails."""
    raise RuntimeError("the pantry door is stuck")


@server.tool(name=f"{PREFIX}slow")
async def slow(seconds: float) -> str:
    """Takes its time."""
    await asyncio.sleep(seconds)
    return "done at last"


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
    if sys.argv[1] == "stdio":
        server.run("stdio")
        return
    import uvicorn

    app = server.streamable_http_app()
    uvicorn.run(require_token(app, os.environ["TOKEN"]), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
