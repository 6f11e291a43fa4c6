"""The limiter seam: fixed windows that start at a key's first hit (as GitHub's do).

A window of `period` seconds allows `limit` hits; `reset` is the epoch second at which
the window ends. Backends store one counter per key and let it expire with the window.
"""

from __future__ import annotations

import math
from typing import Protocol


class LimiterUnavailable(Exception):
    """The backend could not answer (Redis down): the caller decides fail-open or fallback."""


class Decision:
    """One counted request: allowed or not, and the window's state for the headers.
    (A plain slotted class, not a frozen dataclass: one is made per API request, and a
    frozen dataclass's __init__ costs five times as much.)"""

    __slots__ = ("allowed", "fixed", "limit", "reset", "used")

    def __init__(
        self,
        allowed: bool,
        limit: int,
        used: int,
        reset: float,
        fixed: FixedHeaders | None = None,
    ) -> None:
        self.allowed = allowed
        self.limit = limit
        self.used = used
        self.reset = reset  # epoch seconds (float; headers round it up)
        # the Limit and Reset headers, when the backend keeps them for the window
        self.fixed = fixed

    def __repr__(self) -> str:
        return (
            f"Decision(allowed={self.allowed}, limit={self.limit}, used={self.used},"
            f" reset={self.reset})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return (self.allowed, self.limit, self.used, self.reset) == (
            other.allowed,
            other.limit,
            other.used,
            other.reset,
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset - now))

    def headers(self) -> dict[str, str]:
        """GitHub's X-RateLimit-* headers."""
        return dict(self.header_pairs())

    def header_pairs(self) -> HeaderPairs:
        """GitHub's X-RateLimit-* headers as (name, value) pairs, in GitHub's order
        (this runs on every API request: the window's fixed pairs are reused)."""
        limit, used = self.limit, self.used
        fixed = self.fixed or fixed_headers(limit, self.reset)
        return (
            fixed[0],
            ("X-RateLimit-Remaining", str(limit - used if used < limit else 0)),
            fixed[1],
            ("X-RateLimit-Used", str(used if used < limit else limit)),
            _RESOURCE,
        )


HeaderPairs = tuple[tuple[str, str], ...]
FixedHeaders = tuple[tuple[str, str], tuple[str, str]]
_RESOURCE = ("X-RateLimit-Resource", "core")


def fixed_headers(limit: int, reset: float) -> FixedHeaders:
    """The headers that stay the same for a whole window: Limit and Reset."""
    return (("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Reset", str(math.ceil(reset))))


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, period: int, cost: int = 1) -> Decision:
        """Count `cost` against `key` and say whether it stayed within `limit`."""

    async def peek(self, key: str, limit: int, period: int) -> Decision:
        """The current state of `key` without counting anything."""

    async def reset(self, key: str) -> None:
        """Forget `key` (tests, admin tools)."""

    async def close(self) -> None: ...
