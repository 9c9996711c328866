"""Per-client back-off after wrong tokens, so a token cannot be guessed online.

A client (an IPv4 address, or an IPv6 /64: one household's prefix) gets `FREE_FAILURES` wrong tokens
for free; after that each wrong token doubles the wait before its next attempt is even looked at
(from `BASE_DELAY_S` up to `MAX_DELAY_S`). Attempts during the wait are refused (429, with
`Retry-After`) without checking the token. A right token clears the client's record. At most
`MAX_CLIENTS` records are kept (the oldest go first), so a flood of addresses cannot grow memory.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 5
BASE_DELAY_S = 1.0
MAX_DELAY_S = 60.0
MAX_CLIENTS = 4096


def client_key(host: str | None) -> str:
    """Whom a failure is counted against: the address, or its /64 for IPv6."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else str(address)


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0


class FailureThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: collections.OrderedDict[str, _Record] = collections.OrderedDict()

    def retry_after(self, host: str | None) -> int:
        """Whole seconds this client must wait before its next token is checked (0: go on)."""
        record = self._records.get(client_key(host))
        if record is None:
            return 0
        wait = record.blocked_until - self._clock()
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, host: str | None) -> None:
        key = client_key(host)
        record = self._records.pop(key, None) or _Record()
        record.failures += 1
        beyond = record.failures - FREE_FAILURES
        if beyond >= 0:
            record.blocked_until = self._clock() + min(MAX_DELAY_S, BASE_DELAY_S * 2 ** min(beyond, 32))
        self._records[key] = record  # most recent last
        while len(self._records) > MAX_CLIENTS:
            self._records.popitem(last=False)

    def succeeded(self, host: str | None) -> None:
        self._records.pop(client_key(host), None)
