"""MCP servers from an `mcpServers` JSON file, connected for the appliance's lifetime.

    {"mcpServers": {
        "home": {"url": "http://homeassistant.local:8123/api/mcp",
                 "headers": {"Authorization": "Bearer ${HA_TOKEN}"}},
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "Europe/Berlin"]}}}

A server with `command` runs over stdio (its environment is the MCP SDK's minimal default plus
`env`: the appliance's own secrets are not passed on); one with `url` over streamable HTTP.
`${NAME}` in any value is the environment variable NAME, or the contents of the file named by
NAME_FILE (a Docker/Kubernetes secret), so tokens never sit in the file.

Each server is owned by one task (the MCP SDK needs connect and cleanup on the same task): it
connects, lists the tools once (the list is cached), pings now and then, and when the server
dies or cannot start it is logged, left out of new conversations, and retried with a doubling
backoff. A server that answers a ping, even with an error, is alive: the 2026-07-28 protocol has
no `ping` (such servers answer "Method not found") and some servers refuse it. Only silence (a
timeout) or a broken transport is a loss. A tool call that takes longer than the tool timeout
fails, and the model says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events import EventBus, McpServerChanged
from ..redaction import register_secret
from .mcp_stderr import ServerStderr
from .sdk import load_sdk
from .tools import BUILTIN_TOOL_NAMES
from .tools.errors import ToolFailed, tool_failure

if TYPE_CHECKING:  # the SDK is imported once a server is made (see sdk.py)
    from agents.mcp import MCPServer, MCPServerStdio, MCPServerStreamableHttp
    from mcp.client.stdio import StdioServerParameters
    from mcp.types import CallToolResult

log = logging.getLogger("appliance.mcp")

# The HTTP client logs every request's URL at INFO; a URL may carry a token.
for _noisy in ("httpx", "httpx2"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

ERROR_TEXT_CHARS = 160  # a server's own error text, as far as the model and the log get it
PING_INTERVAL_S = 5.0
FIRST_RETRY_S = 1.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "********"


@functools.cache
def mcp_error_class() -> type[Exception]:
    """mcp 2 calls its error MCPError, mcp 1 McpError: raised for a JSON-RPC error answer, and also for
    failures the client makes up itself, which are no answer at all. Looked up on first use (the SDK is
    imported lazily)."""
    from mcp.shared import exceptions

    found: type[Exception] = vars(exceptions).get("MCPError") or vars(exceptions)["McpError"]
    return found

_NO_ANSWER = {
    -32000: "connection closed",  # mcp 1 and 2
    -32001: "timed out",  # mcp 2's request timeout
    408: "timed out",  # mcp 1's
}


class McpConfigError(ValueError):
    """The servers file, or one server in it, cannot be used; the message never holds a secret."""


@dataclass(frozen=True)
class McpServerSpec:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    problem: str | None = None  # why it cannot start (e.g. an unset variable); it is logged and left out
    shown: Mapping[str, Any] = field(default_factory=dict)  # as written in the file, ${NAME}s unexpanded

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "streamable_http"

    def masked(self) -> dict[str, Any]:
        """For `appliance config`: the values of env and headers are never shown."""
        out: dict[str, Any] = {"transport": self.transport}
        if self.command:
            out.update(command=self.shown.get("command", self.command), args=list(self.shown.get("args", [])),
                       env={k: MASK for k in self.env})
        else:
            out.update(url=_strip_userinfo(str(self.shown.get("url", ""))), headers={k: MASK for k in self.headers})
        if self.problem:
            out["problem"] = self.problem
        return out


def _strip_userinfo(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//", url)


def expand(value: str, environ: Mapping[str, str], *, secret: bool = False) -> str:
    """Replace each ${NAME} by the variable NAME, or by the contents of the file NAME_FILE names.

    `secret`: each value put in is registered with the log filter (and the masking of API events
    and transcripts), as it is for the values of headers and env, which carry tokens."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in environ:
            found = environ[name]
        elif f"{name}_FILE" in environ:
            path = Path(environ[f"{name}_FILE"])
            try:
                found = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise McpConfigError(f"{name}_FILE ({path}) cannot be read: {exc.strerror}") from None
        else:
            raise McpConfigError(f"${{{name}}} is not set (set {name} or {name}_FILE)")
        if secret:
            register_secret(found)
        return found

    return _VAR.sub(one, value)


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise McpConfigError(f"{what} must be a list of strings")
    return [str(v) for v in value]


def _mapping(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise McpConfigError(f"{what} must be an object of strings")
    return {str(k): str(v) for k, v in value.items()}


def parse_server(name: str, entry: Any, environ: Mapping[str, str]) -> McpServerSpec:
    """One server; a problem with it (not with the file) is kept in `problem` so the others still run."""
    if not isinstance(entry, dict):
        return McpServerSpec(name, problem="must be an object with command or url")
    shown = {k: entry[k] for k in ("command", "args", "url") if k in entry}
    try:
        if entry.get("disabled") is True:
            raise McpConfigError("disabled")
        if "command" in entry:
            return McpServerSpec(
                name=name,
                command=expand(str(entry["command"]), environ),
                args=tuple(expand(a, environ) for a in _strings(entry.get("args", []), "args")),
                env={k: expand(v, environ, secret=True) for k, v in _mapping(entry.get("env", {}), "env").items()},
                cwd=expand(str(entry["cwd"]), environ) if "cwd" in entry else None,
                shown=shown,
            )
        if "url" in entry:
            kind = str(entry.get("type", entry.get("transport", "streamable_http"))).replace("-", "_")
            if kind not in ("streamable_http", "http", "streamableHttp".lower()):
                raise McpConfigError(f"transport {kind!r} is not supported (streamable HTTP or stdio)")
            return McpServerSpec(
                name=name,
                url=expand(str(entry["url"]), environ),
                headers={k: expand(v, environ, secret=True)
                         for k, v in _mapping(entry.get("headers", {}), "headers").items()},
                shown=shown,
            )
        raise McpConfigError("needs a command (stdio) or a url (streamable HTTP)")
    except McpConfigError as exc:
        return McpServerSpec(name, command=str(entry.get("command") or "") or None,
                             url=str(entry.get("url") or "") or None, problem=str(exc), shown=shown)


def load_servers_file(path: Path, environ: Mapping[str, str] | None = None) -> list[McpServerSpec]:
    environ = os.environ if environ is None else environ
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise McpConfigError(f"{path} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise McpConfigError(f"{path} is not JSON: {exc}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(f'{path}: expected {{"mcpServers": {{"NAME": {{...}}}}}}')
    return [parse_server(str(name), entry, environ) for name, entry in servers.items()]


def _error_text(result: CallToolResult) -> str:
    texts = [str(getattr(item, "text", "")) for item in result.content]
    text = " ".join(" ".join(texts).split())
    return (text[: ERROR_TEXT_CHARS - 1] + "…") if len(text) > ERROR_TEXT_CHARS else (text or "no details")


class _FlaggedErrorsFail:
    """A result the server flags ``isError`` fails the call, so the model is told the way it is for any
    broken tool (``TOOL_ERROR``) and the log marks the call as an error, not as a result."""

    name: str

    async def call_tool(self, tool_name: str, arguments: dict[str, Any] | None,
                        meta: dict[str, Any] | None = None) -> CallToolResult:
        result: CallToolResult = await super().call_tool(tool_name, arguments, meta)  # type: ignore[misc]
        # mcp 2 calls the flag is_error, mcp 1 isError.
        if getattr(result, "is_error", None) or getattr(result, "isError", None):
            raise ToolFailed(f"the {self.name} server reported an error: {_error_text(result)}")
        return result


@contextlib.asynccontextmanager
async def _stdio_with_logged_stderr(params: StdioServerParameters, name: str) -> AsyncIterator[Any]:
    """The MCP SDK's stdio transport, with the server's stderr turned into log lines (see mcp_stderr)."""
    from mcp.client.stdio import stdio_client

    stderr = ServerStderr(name)
    try:
        async with stdio_client(params, errlog=stderr.errlog) as streams:
            stderr.spawned()
            yield streams
    finally:
        stderr.close()


@functools.cache
def _server_classes() -> tuple[type[MCPServerStdio], type[MCPServerStreamableHttp]]:
    """The SDK's stdio and streamable-HTTP clients with `_FlaggedErrorsFail`; made on first use, so
    an appliance without MCP servers never imports the SDK's MCP layer."""
    from agents.mcp import MCPServerStdio, MCPServerStreamableHttp

    class _StdioServer(_FlaggedErrorsFail, MCPServerStdio):
        def create_streams(self) -> contextlib.AbstractAsyncContextManager[Any]:
            return _stdio_with_logged_stderr(self.params, self.name)

    class _HttpServer(_FlaggedErrorsFail, MCPServerStreamableHttp):
        pass

    return _StdioServer, _HttpServer


def make_server(spec: McpServerSpec, timeout_s: float) -> MCPServer:
    """The SDK's client for one server; its session timeout is the tool-call timeout."""
    stdio_server, http_server = _server_classes()
    common: dict[str, Any] = {
        "name": spec.name,
        "cache_tools_list": True,
        "client_session_timeout_seconds": timeout_s,
        "failure_error_function": tool_failure,
    }
    if spec.command:
        params: dict[str, Any] = {"command": spec.command, "args": list(spec.args)}
        if spec.env:
            params["env"] = dict(spec.env)
        if spec.cwd:
            params["cwd"] = spec.cwd
        return stdio_server(params, **common)  # type: ignore[arg-type]
    return http_server(
        {"url": spec.url or "", "headers": dict(spec.headers), "timeout": timeout_s,
         "sse_read_timeout": 300},
        **common,
    )


class _ServerKeeper:
    """One server's connection, owned by one task: connect, watch, reconnect with backoff."""

    def __init__(self, spec: McpServerSpec, events: EventBus, claims: dict[str, str], *, connect_timeout_s: float,
                 tool_timeout_s: float, reconnect_max_s: float) -> None:
        self.spec = spec
        self._claims = claims
        self.server: MCPServer | None = None  # set while connected
        self.tools: list[str] = []
        self.attempted = asyncio.Event()  # the first attempt is over (up or failed)
        self._events = events
        self._connect_timeout_s = connect_timeout_s
        self._tool_timeout_s = tool_timeout_s
        self._reconnect_max_s = reconnect_max_s

    async def run(self) -> None:
        backoff = FIRST_RETRY_S
        was_up = False
        await load_sdk(mcp=True)  # off the loop, with the SDK's MCP clients (make_server uses them)
        while True:
            server = make_server(self.spec, self._tool_timeout_s)
            try:
                await asyncio.wait_for(server.connect(), self._connect_timeout_s)
                tools = await asyncio.wait_for(server.list_tools(), self._connect_timeout_s)
                self.tools = self._claim([t.name for t in tools], server)
                self.server = server
                was_up = True
                backoff = FIRST_RETRY_S
                self._events.publish(McpServerChanged(server=self.spec.name, action="connected",
                                                      tools=len(self.tools)))
                self.attempted.set()
                await self._watch(server)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._events.publish(McpServerChanged(
                    server=self.spec.name, action="lost" if was_up else "failed",
                    retry_in_s=backoff, error=_reason(exc),
                ))
            finally:
                self.server = None
                self.attempted.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.cleanup(), 5)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._reconnect_max_s)
            was_up = False

    def _claim(self, names: list[str], server: MCPServer) -> list[str]:
        """Tool names must be unique in a session: a name a built-in tool or another server already
        has is left out of this server's list (a warning says so)."""
        blocked = [n for n in names if self._claims.setdefault(n, self.spec.name) != self.spec.name]
        if blocked:
            server.tool_filter = {"blocked_tool_names": blocked}  # type: ignore[attr-defined]
            log.warning("MCP server %s: tools %s left out, their names are taken (by %s)", self.spec.name,
                        blocked, sorted({self._claims[n] for n in blocked}),
                        extra={"event": "mcp_tools_clash", "server": self.spec.name, "tools": blocked})
        return [n for n in names if n not in blocked]

    async def _watch(self, server: MCPServer) -> None:
        """Returns (raises) when the server goes silent or its transport breaks."""
        session = getattr(server, "session", None)
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            if session is None:
                continue
            try:
                await asyncio.wait_for(session.send_ping(), self._connect_timeout_s)
            except mcp_error_class() as exc:
                if not server_answered(exc):
                    raise


def server_answered(exc: BaseException) -> bool:
    """Whether an MCP error is the server's own JSON-RPC error answer (it is alive), not one the
    client raised because the connection closed or the request timed out."""
    code = _error_code(exc)
    return isinstance(exc, mcp_error_class()) and isinstance(code, int) and code not in _NO_ANSWER


def _error_code(exc: BaseException) -> object:
    return getattr(getattr(exc, "error", None), "code", None) if isinstance(exc, mcp_error_class()) else None


def _reason(exc: BaseException) -> str:
    """What failed, without the exception's text for HTTP errors (URLs and headers may hold tokens)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    code = _error_code(inner)
    if isinstance(code, int) and code in _NO_ANSWER:
        return _NO_ANSWER[code]
    text = str(inner).splitlines()[0][:160] if str(inner) else ""
    if "Bearer" in text or "token" in text.lower():
        text = ""
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


class McpManager:
    """All configured servers. `active()` is what a new conversation's agents get."""

    def __init__(self, specs: list[McpServerSpec], events: EventBus, *, connect_timeout_s: float = 10.0,
                 tool_timeout_s: float = 10.0, reconnect_max_s: float = 60.0,
                 reserved: frozenset[str] = BUILTIN_TOOL_NAMES) -> None:
        self.specs = specs
        self._events = events
        claims = {name: "the appliance" for name in reserved}  # tool name -> who has it
        self._keepers = [
            _ServerKeeper(spec, events, claims, connect_timeout_s=connect_timeout_s, tool_timeout_s=tool_timeout_s,
                          reconnect_max_s=reconnect_max_s)
            for spec in specs if spec.problem is None
        ]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, wait_s: float | None = None) -> None:
        """Connect every server (concurrently) and wait, bounded, for each first attempt to finish."""
        for spec in self.specs:
            if spec.problem is not None:
                self._events.publish(McpServerChanged(server=spec.name, action="failed", error=spec.problem))
        self._tasks = [asyncio.create_task(k.run(), name=f"mcp-{k.spec.name}") for k in self._keepers]
        if self._keepers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(k.attempted.wait() for k in self._keepers)), wait_s)

    def active(self) -> dict[str, MCPServer]:
        return {k.spec.name: k.server for k in self._keepers if k.server is not None}

    def tools(self) -> dict[str, list[str]]:
        return {k.spec.name: list(k.tools) for k in self._keepers if k.server is not None}

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
