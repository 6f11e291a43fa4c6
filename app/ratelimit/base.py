"""The limiter seam: fixed windows that start at a key's first hit (as GitHub's do).

A window of `period` seconds allows `limit` hits; `reset` is the epoch second at which
the window ends. Backends store one counter per key and let it expire with the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class LimiterUnavailable(Exception):
    """The backend could not answer (Redis down): the caller decides fail-open or fallback."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    used: int
    reset: float  # epoch seconds (float; headers round it up)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset - now))

    def headers(self, resource: str = "core") -> dict[str, str]:
        """GitHub's X-RateLimit-* headers."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset)),
            "X-RateLimit-Used": str(min(self.used, self.limit)),
            "X-RateLimit-Resource": resource,
        }


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, period: int, cost: int = 1) -> Decision:
        """Count `cost` against `key` and say whether it stayed within `limit`."""

    async def peek(self, key: str, limit: int, period: int) -> Decision:
        """The current state of `key` without counting anything."""

    async def reset(self, key: str) -> None:
        """Forget `key` (tests, admin tools)."""

    async def close(self) -> None: ...
