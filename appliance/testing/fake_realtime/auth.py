"""Who may connect, and the client-secrets endpoint that mints ephemeral keys.

A server-side client authenticates with ``Authorization: Bearer KEY``. A browser WebSocket
cannot send headers, so OpenAI's browser clients (``@openai/agents-realtime``) offer the
subprotocols ``realtime`` and ``openai-insecure-api-key.KEY`` (plus an
``openai-agents-sdk.VERSION`` marker); the server answers with ``realtime``. KEY is the API key
or an ephemeral ``ek_…`` secret from ``POST /v1/realtime/client_secrets``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from websockets.datastructures import Headers

from .wire import JsonDict, deep_merge, initial_session

CLIENT_SECRETS_PATH = "/v1/realtime/client_secrets"
REALTIME_SUBPROTOCOL = "realtime"
KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
EPHEMERAL_PREFIX = "ek_"
DEFAULT_SECRET_TTL_S = 600
"""The API's default lifetime of a client secret (``expires_after.seconds``: 10..7200)."""

AuthVia = Literal["header", "subprotocol"]


@dataclass(frozen=True)
class Credentials:
    """The key an opening handshake presented, and how."""

    via: AuthVia | None
    key: str | None


def offered_subprotocols(headers: Headers) -> list[str]:
    return [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",") if p.strip()]


def presented_credentials(headers: Headers) -> Credentials:
    """The bearer header wins over the subprotocol, as on the real API."""
    authorization = headers.get("Authorization")
    if authorization is not None and authorization.startswith("Bearer "):
        return Credentials("header", authorization.removeprefix("Bearer ").strip() or None)
    for protocol in offered_subprotocols(headers):
        if protocol.startswith(KEY_SUBPROTOCOL_PREFIX):
            return Credentials("subprotocol", protocol.removeprefix(KEY_SUBPROTOCOL_PREFIX) or None)
    return Credentials(None, None)


def error_body(message: str, code: str | None, error_type: str = "invalid_request_error") -> JsonDict:
    """An OpenAI REST error body."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def invalid_key_body(key: str | None) -> JsonDict:
    if key is None:
        return error_body(
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
        )
    return error_body("Incorrect API key provided.", "invalid_api_key")  # never echo the key


@dataclass
class ClientSecret:
    value: str
    expires_at: int
    session: JsonDict


class ClientSecretStore:
    """Ephemeral keys this server issued, with the session each one starts."""

    def __init__(self) -> None:
        self._issued: dict[str, ClientSecret] = {}

    def issue(self, session: JsonDict, expires_in_s: float) -> ClientSecret:
        secret = ClientSecret(EPHEMERAL_PREFIX + secrets.token_urlsafe(24), int(time.time() + expires_in_s), session)
        self._issued[secret.value] = secret
        return secret

    def live(self, value: str) -> ClientSecret | None:
        secret = self._issued.get(value)
        return secret if secret is not None and time.time() < secret.expires_at else None

    def expire(self, value: str | None = None) -> None:
        """Expire one secret (or all of them) now."""
        for secret in self._issued.values():
            if value is None or secret.value == value:
                secret.expires_at = int(time.time()) - 1


def parse_secret_request(body: bytes) -> tuple[JsonDict | None, int, JsonDict | None]:
    """(request JSON, lifetime in s, error body) of a client-secrets request body."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None, 0, error_body("We could not parse the JSON body of your request.", "invalid_json")
    if not isinstance(request, dict):
        return None, 0, error_body("The body must be a JSON object.", "invalid_type")
    expires_after = request.get("expires_after") or {}
    seconds: Any = expires_after.get("seconds", DEFAULT_SECRET_TTL_S) if isinstance(expires_after, dict) else None
    if not isinstance(seconds, int) or not 10 <= seconds <= 7200:
        return request, 0, error_body("Invalid 'expires_after.seconds': expected 10 to 7200.", "invalid_value")
    session = request.get("session")
    if session is not None and (not isinstance(session, dict) or session.get("type", "realtime") != "realtime"):
        return request, 0, error_body("The fake only issues secrets for 'realtime' sessions.", "invalid_value")
    return request, seconds, None


def secret_session(request: JsonDict, new_id: Callable[[str], str]) -> JsonDict:
    """The session an ephemeral key starts: the defaults with the requested config merged in."""
    requested = request.get("session") or {}
    base = initial_session(new_id("sess"), str(requested.get("model") or "gpt-realtime"))
    session = deep_merge(base, requested)
    session["type"] = "realtime"
    return session


def client_secret_response(secret: ClientSecret) -> JsonDict:
    """The body of a granted request (shape of ``openai.types.realtime.ClientSecretCreateResponse``)."""
    return {"value": secret.value, "expires_at": secret.expires_at, "session": secret.session}


def response_validator() -> Callable[[JsonDict], None] | None:
    """Check a body against the openai package's ``ClientSecretCreateResponse``, if installed."""
    try:
        from openai.types.realtime import ClientSecretCreateResponse
    except ImportError:  # pragma: no cover - the test venv always has openai
        return None

    def validate(body: JsonDict) -> None:
        ClientSecretCreateResponse.model_validate(body)

    return validate
