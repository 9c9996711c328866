"""Typed recordings a test asserts on (the older recordings are plain dicts on the server)."""

from __future__ import annotations

from dataclasses import dataclass

from .wire import JsonDict


@dataclass
class FunctionCallOutput:
    """A ``function_call_output`` item a client created, and whether it then asked for a response."""

    call_id: str
    output: str
    name: str | None
    """The function the fake called with that call_id (None: a call_id the fake never made)."""
    connection: int
    """Index into ``server.connections``."""
    received_at: float
    """time.monotonic() when the item arrived."""
    response_requested_at: float | None = None
    """time.monotonic() of the first ``response.create`` on the same connection after it
    (None: the client has not asked for a response since)."""

    @property
    def response_requested(self) -> bool:
        return self.response_requested_at is not None


@dataclass
class ClientSecretRequest:
    """One ``POST /v1/realtime/client_secrets`` (whether or not it was granted)."""

    body: JsonDict | None
    """The JSON body (the session config the caller asked for); None if it was not JSON."""
    status: int
    """HTTP status the fake answered."""
    value: str | None
    """The ``ek_…`` secret issued (None when refused)."""
    received_at: float
