"""Who may use the page's API: a token (when one is set) and same-origin browsers only.

The token comes as a cookie (the page sets it through `POST /api/login`, HttpOnly, SameSite=Strict)
or as `Authorization: Bearer …` (peripherals). Without a token the server only listens on loopback
(settings refuse anything else); there a request must still name a loopback host (an IP literal or
`localhost`, by `settings.is_loopback`), so a web page the owner visits cannot reach the API through
DNS rebinding, and a WebSocket opened by another site's page is refused by its Origin.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from pydantic import SecretStr
from starlette.datastructures import Headers

from ..settings import is_loopback

COOKIE = "appliance_token"


def presented_token(headers: Headers, cookies: dict[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return cookies.get(COOKIE) or None


def token_matches(presented: str | None, token: SecretStr | None) -> bool:
    if token is None:
        return True
    if presented is None:
        return False
    # surrogatepass: a lone surrogate (from JSON) is just a wrong token, not an encoding error.
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), token.get_secret_value().encode())


def _hostname(netloc: str) -> str:
    try:
        return (urlsplit(f"//{netloc}").hostname or "").lower()
    except ValueError:  # "[::1" and the like: names no host
        return ""


def origin_allowed(headers: Headers) -> bool:
    """A browser's request must come from a page served by this same host:port."""
    origin = headers.get("origin")
    if origin is None:  # not a browser (a peripheral, curl)
        return True
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        return False
    return netloc == headers.get("host", "").lower()


def host_allowed(headers: Headers, token: SecretStr | None) -> bool:
    """Without a token, only requests that name a loopback host (defeats DNS rebinding)."""
    if token is not None:
        return True
    return is_loopback(_hostname(headers.get("host", "")))

