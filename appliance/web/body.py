"""Request bodies read with a cap: an oversized body is refused before it is read, whatever its framing.

A `Content-Length` over the cap is refused from the header alone; a chunked body is read chunk by
chunk and refused at the first byte past the cap (uvicorn buffers at most 64 KiB of it meanwhile).
The refusal closes the connection, so the rest of the body is never read either. A body that
trickles in for longer than `BODY_TIMEOUT_S` is refused too (it would hold a page/API slot).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

# A body trickled slower than this holds a page/API slot no longer.
BODY_TIMEOUT_S = 10.0


class BodyTooLarge(Exception):
    """The request's body is longer than its route accepts."""


class BodyTooSlow(Exception):
    """The request's body did not arrive within `BODY_TIMEOUT_S`."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; raises `BodyTooLarge` without reading past the cap."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise BodyTooLarge
    except TimeoutError:
        raise BodyTooSlow from None
    return bytes(body)


def refused_body(exc: BodyTooLarge | BodyTooSlow, limit: int) -> Response:
    """413 or 408, with Connection: close so uvicorn drops the connection instead of reading on."""
    if isinstance(exc, BodyTooSlow):
        return PlainTextResponse("body too slow\n", status_code=408, headers={"Connection": "close"})
    return PlainTextResponse(f"body too large (at most {limit} bytes)\n", status_code=413,
                             headers={"Connection": "close"})
