"""Rate limiting: one seam (`Limiter`), two backends (in process, Redis), and the policies
built on it (general request limits, failed-login limits). No aiohttp here."""

from app.ratelimit.base import Decision, Limiter, LimiterUnavailable
from app.ratelimit.logins import LoginGuard
from app.ratelimit.memory import MemoryLimiter
from app.ratelimit.policy import RateLimits, make_limiter

__all__ = [
    "Decision",
    "Limiter",
    "LimiterUnavailable",
    "LoginGuard",
    "MemoryLimiter",
    "RateLimits",
    "make_limiter",
]
