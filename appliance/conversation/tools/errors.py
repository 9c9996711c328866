"""What the model is told when a tool goes wrong, so it still answers the person.

Every tool (built-in, weather, MCP) fails the same way: the model gets a result that starts with
`TOOL_ERROR` and tells it to say briefly that this cannot be done right now; the SDK asks for a
response after it. The conversation recognises the marker to log which tool failed and why.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents import RunContextWrapper

TOOL_ERROR = "TOOL ERROR"
ADVICE = "Tell the person briefly that you cannot do that right now; do not retry."


def error_result(reason: str) -> str:
    return f"{TOOL_ERROR}: {reason}. {ADVICE}"


def is_error_result(output: object) -> bool:
    return isinstance(output, str) and output.startswith(TOOL_ERROR)


def describe_failure(error: BaseException) -> str:
    """A short reason without the exception's arguments (they may hold URLs with tokens)."""
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "it timed out"
    cause = error.__cause__ or error
    failed = cause if isinstance(cause, ToolFailed) else error  # the SDK wraps what an MCP call raises
    if isinstance(failed, ToolFailed):
        return str(failed)
    if "timed out" in str(cause).lower():  # an MCP request that hit the session timeout
        return "it timed out"
    return f"it failed ({type(cause).__name__})"


class ToolFailed(RuntimeError):
    """A tool's own, model-safe explanation of why it could not do the job."""


def tool_failure(_ctx: RunContextWrapper[Any], error: Exception) -> str:
    """The SDK's `failure_error_function` for every appliance tool and MCP server."""
    return error_result(describe_failure(error))


def tool_timeout(_ctx: RunContextWrapper[Any], _error: Exception) -> str:
    return error_result("it timed out")
