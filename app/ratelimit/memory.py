"""The in-process limiter: the real default for one instance, not a mock.

Memory stays bounded: expired windows are swept when the table grows, and past
`max_keys` the oldest windows are dropped (a flood of distinct addresses cannot grow it
without limit; dropping a window only ever forgets hits, it never refuses anyone).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.ratelimit.base import Decision


class MemoryLimiter:
    def __init__(self, *, max_keys: int = 200_000, clock: Callable[[], float] = time.time) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys
        self._clock = clock
        self._next_sweep = 0.0

    async def hit(self, key: str, limit: int, period: int, cost: int = 1) -> Decision:
        return self.hit_now(key, limit, period, cost)

    def hit_now(self, key: str, limit: int, period: int, cost: int = 1) -> Decision:
        """Synchronous: the memory backend never waits."""
        now = self._clock()
        used, reset = self._windows.get(key, (0, 0.0))
        if reset <= now:
            used, reset = 0, now + period
            self._make_room(now)
        used += cost
        self._windows[key] = (used, reset)
        return Decision(allowed=used <= limit, limit=limit, used=used, reset=reset)

    async def peek(self, key: str, limit: int, period: int) -> Decision:
        now = self._clock()
        used, reset = self._windows.get(key, (0, 0.0))
        if reset <= now:
            used, reset = 0, now + period
        return Decision(allowed=used < limit, limit=limit, used=used, reset=reset)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    async def close(self) -> None:
        self._windows.clear()

    def __len__(self) -> int:
        return len(self._windows)

    def _make_room(self, now: float) -> None:
        if len(self._windows) < self._max_keys and now < self._next_sweep:
            return
        self._next_sweep = now + 10.0
        self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        excess = len(self._windows) - self._max_keys + 1
        if excess > 0:
            for key in list(self._windows)[:excess]:
                del self._windows[key]
