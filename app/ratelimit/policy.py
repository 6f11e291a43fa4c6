"""General request limits: per user when authenticated, per client address otherwise.

Redis outage (SECURITY-NOTES rule 19): general limits fail open. The refusal that a
broken Redis would cause is worse than a short window without limits; the outage is
logged (once per `log_every` seconds), counted, and reported by /readyz as degraded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from app.ratelimit.base import Decision, Limiter, LimiterUnavailable
from app.ratelimit.memory import MemoryLimiter
from app.settings import Settings, parse_rate

log = logging.getLogger(__name__)
DEGRADED_FOR = 30.0  # seconds after the last backend error that /readyz says "degraded"


def make_limiter(settings: Settings) -> Limiter:
    if settings.redis_url:
        from app.ratelimit.redis import RedisLimiter

        return RedisLimiter(settings.redis_url, prefix=settings.redis_prefix + "rl:")
    return MemoryLimiter()


class BackendHealth:
    """Remembers backend failures for logging, metrics and /readyz."""

    def __init__(self, on_error: Callable[[], None] | None = None, log_every: float = 10.0):
        self.errors = 0
        self.last_error = 0.0
        self.last_message = ""
        self._on_error = on_error
        self._log_every = log_every
        self._logged_at = 0.0

    def failed(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        self.errors += 1
        self.last_error = now
        self.last_message = str(exc)[:200]
        if self._on_error is not None:
            self._on_error()
        if now - self._logged_at >= self._log_every:
            self._logged_at = now
            log.error("rate-limit backend unavailable (%s): %s", what, self.last_message)

    @property
    def degraded(self) -> bool:
        return self.last_error > 0 and time.monotonic() - self.last_error < DEGRADED_FOR


class RateLimits:
    def __init__(self, settings: Settings, limiter: Limiter, health: BackendHealth) -> None:
        self.user_limit, self.user_period = parse_rate(settings.rate_limit)
        self.anon_limit, self.anon_period = parse_rate(settings.rate_limit_anonymous)
        self.limiter = limiter
        self.health = health

    def check_now(self, user_id: int | None, address: str) -> Decision | Literal[False]:
        """The in-process backend's answer, synchronously; False means this limiter
        needs `await check(...)`."""
        limiter = self.limiter
        if not isinstance(limiter, MemoryLimiter):
            return False
        if user_id is None:
            return limiter.hit_now("addr:" + address, self.anon_limit, self.anon_period)
        return limiter.hit_now(f"user:{user_id}", self.user_limit, self.user_period)

    async def check(self, *, user_id: int | None, address: str) -> Decision | None:
        """Count one request; None when the backend could not answer (fail open)."""
        if user_id is not None:
            key, limit, period = f"user:{user_id}", self.user_limit, self.user_period
        else:
            key, limit, period = f"addr:{address}", self.anon_limit, self.anon_period
        try:
            return await self.limiter.hit(key, limit, period)
        except LimiterUnavailable as exc:
            self.health.failed("request limits, failing open", exc)
            return None
