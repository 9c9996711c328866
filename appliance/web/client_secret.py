"""Browser talk: a short-lived Realtime client secret, minted with the appliance's own key.

The appliance calls the Realtime API's client-secrets endpoint on the host of
`APPLIANCE_REALTIME__URL` (wss → https, ws → http) and hands the browser only the ephemeral
`ek_…` value, the WebSocket URL to use, and the same instructions and voice as the device.
Its own key never leaves the process.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..settings import Settings

log = logging.getLogger("appliance.web")

SECRET_LIFETIME_S = 600


class ClientSecretError(RuntimeError):
    """The client secret could not be created; the message is safe to show."""


def api_base_url(realtime_url: str) -> str:
    """`wss://api.openai.com/v1/realtime` → `https://api.openai.com/v1`."""
    parts = urlsplit(realtime_url)
    scheme = {"wss": "https", "ws": "http"}[parts.scheme]
    return urlunsplit((scheme, parts.netloc, "/v1", "", ""))


def browser_realtime_url(realtime_url: str, model: str) -> str:
    """The WebSocket URL the browser connects to: the device's, with `?model=` as the API wants."""
    parts = urlsplit(realtime_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode({"model": model}), ""))


def session_config(settings: Settings, instructions: str) -> dict[str, Any]:
    rt = settings.realtime
    return {
        "type": "realtime",
        "model": rt.model,
        "instructions": instructions,
        "audio": {"output": {"voice": rt.voice}},
    }


async def create_client_secret(settings: Settings, api_key: str) -> dict[str, Any]:
    """What the page needs to talk: the ephemeral key and where and how to use it."""
    from openai import APIError, AsyncOpenAI  # imported on use: `openai` is ~15 MB an idle device never needs

    try:
        instructions = settings.agent.resolved_instructions()
    except OSError as exc:
        raise ClientSecretError(f"instructions cannot be read: {exc.strerror}") from None
    client = AsyncOpenAI(api_key=api_key, base_url=api_base_url(settings.realtime.url), max_retries=0, timeout=10)
    try:
        created = await client.realtime.client_secrets.create(
            session=session_config(settings, instructions),  # type: ignore[arg-type]
            expires_after={"anchor": "created_at", "seconds": SECRET_LIFETIME_S},
        )
    except APIError as exc:
        # The status and the API's own message only: never the request (it carries the key).
        status = getattr(exc, "status_code", None)
        raise ClientSecretError(f"client secret refused ({status or 'no response'})") from None
    finally:
        await client.close()
    log.info("client secret issued for browser talk",
             extra={"event": "client_secret", "expires_at": created.expires_at})
    return {
        "value": created.value,
        "expires_at": created.expires_at,
        "url": browser_realtime_url(settings.realtime.url, settings.realtime.model),
        "model": settings.realtime.model,
        "voice": settings.realtime.voice,
        "instructions": instructions,
        "agent_name": settings.agent.name,
    }
