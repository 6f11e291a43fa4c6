"""The Redis limiter: several instances share one counter per key.

One Lua script per hit (INCRBY + PEXPIRE on the first hit + PTTL), so a hit is a single
round trip and atomic. Any Redis failure raises LimiterUnavailable; the policy layer
decides what that means (SECURITY-NOTES rule 19).
"""

from __future__ import annotations

import time
from typing import Any

from app.ratelimit.base import Decision, LimiterUnavailable

_HIT = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {used, ttl}
"""


class RedisLimiter:
    def __init__(self, url: str, *, prefix: str = "githost:rl:", timeout: float = 0.5) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._prefix = prefix
        self._script: Any = self._redis.register_script(_HIT)

    async def hit(self, key: str, limit: int, period: int, cost: int = 1) -> Decision:
        try:
            used, ttl_ms = await self._script(keys=[self._prefix + key], args=[cost, period * 1000])
        except Exception as exc:  # redis raises many types: all mean "no answer"
            raise LimiterUnavailable(str(exc)) from exc
        reset = time.time() + int(ttl_ms) / 1000
        used = int(used)
        return Decision(allowed=used <= limit, limit=limit, used=used, reset=reset)

    async def peek(self, key: str, limit: int, period: int) -> Decision:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._prefix + key)
                pipe.pttl(self._prefix + key)
                raw, ttl_ms = await pipe.execute()
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc
        used = int(raw or 0)
        ttl = int(ttl_ms) / 1000 if int(ttl_ms) > 0 else float(period)
        return Decision(allowed=used < limit, limit=limit, used=used, reset=time.time() + ttl)

    async def reset(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self._redis.aclose()
