"""Failed-login limits (SECURITY-NOTES rule 19), stricter than the general ones.

Three counters per window of APP_AUTH_FAILURE_LIMIT (default 10/minute):

- per address: an address with `limit` failures (any accounts) is refused every
  credential attempt until the window ends: one address cannot brute-force anything.
- per account: an account with `limit` failures (all addresses together) is "under
  attack"; then only addresses that have themselves failed on it in this window are
  refused. A distributed attack gets one guess per address per window, and the owner,
  logging in from an address that has not failed, is never locked out.
- per (account, address): what the previous rule looks at.

Refusals happen before the password is checked, so a refused guess costs no argon2
and says nothing about the password. With Redis the counters are shared; when Redis
does not answer, the in-process limiter takes over (never no limit at all).
"""

from __future__ import annotations

import hashlib
import time

from app.ratelimit.base import Decision, Limiter, LimiterUnavailable
from app.ratelimit.memory import MemoryLimiter
from app.ratelimit.policy import BackendHealth


def _account(login: str) -> str:
    return hashlib.sha256(login.strip().lower().encode("utf-8", "surrogateescape")).hexdigest()[:32]


class LoginGuard:
    def __init__(
        self,
        limit: int,
        period: int,
        limiter: Limiter | None = None,
        health: BackendHealth | None = None,
    ) -> None:
        self.limit = limit
        self.period = period
        self.fallback = MemoryLimiter()
        self.limiter: Limiter = limiter if limiter is not None else self.fallback
        self.health = health or BackendHealth()

    async def retry_after(self, address: str, login: str | None = None) -> int | None:
        """Seconds to wait if this attempt must be refused without checking it, else None."""
        now = time.time()
        by_address = await self._peek(f"lf:addr:{address}")
        if by_address.used >= self.limit:
            return by_address.retry_after(now)
        if not login:
            return None
        account = _account(login)
        by_account = await self._peek(f"lf:acct:{account}")
        if by_account.used < self.limit:
            return None
        pair = await self._peek(f"lf:pair:{account}:{address}")
        if pair.used >= 1:
            return max(pair.retry_after(now), 1)
        return None

    async def failed(self, address: str, login: str | None = None) -> None:
        await self._hit(f"lf:addr:{address}")
        if login:
            account = _account(login)
            await self._hit(f"lf:acct:{account}")
            await self._hit(f"lf:pair:{account}:{address}")

    async def _peek(self, key: str) -> Decision:
        try:
            return await self.limiter.peek(key, self.limit, self.period)
        except LimiterUnavailable as exc:
            self.health.failed("failed-login limits, using the in-process limiter", exc)
            return await self.fallback.peek(key, self.limit, self.period)

    async def _hit(self, key: str) -> Decision:
        try:
            return await self.limiter.hit(key, self.limit, self.period)
        except LimiterUnavailable as exc:
            self.health.failed("failed-login limits, using the in-process limiter", exc)
            return await self.fallback.hit(key, self.limit, self.period)
