"""The in-process limiter: the real default for one instance, not a mock.

Memory stays bounded: expired windows are swept when the table grows, and past
`max_keys` the oldest windows are dropped (a flood of distinct addresses cannot grow it
without limit; dropping a window only ever forgets hits, it never refuses anyone).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.ratelimit.base import Decision, fixed_headers


class _Window(Decision):
    """A key's window, kept up to date in place: it is also the decision `hit_now`
    returns (no new object per request)."""

    __slots__ = ()

    def __init__(self, limit: int, reset: float) -> None:
        super().__init__(True, limit, 0, reset, fixed_headers(limit, reset))


class MemoryLimiter:
    def __init__(self, *, max_keys: int = 200_000, clock: Callable[[], float] = time.time) -> None:
        self._windows: dict[str, _Window] = {}
        self._max_keys = max_keys
        self._clock = clock
        self._next_sweep = 0.0

    async def hit(self, key: str, limit: int, period: int, cost: int = 1) -> Decision:
        window = self.hit_now(key, limit, period, cost)
        # a copy: an awaiting caller may read it after later hits on the key
        return Decision(window.allowed, window.limit, window.used, window.reset, window.fixed)

    def hit_now(self, key: str, limit: int, period: int, cost: int = 1) -> Decision:
        """Synchronous (the memory backend never waits). The decision returned is the
        key's live window: read it before the next hit on the key (the gateway reads it
        at once); `hit` returns a copy."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or window.reset <= now or window.limit != limit:
            self._make_room(now)
            window = self._windows[key] = _Window(limit, now + period)
        window.used = used = window.used + cost
        window.allowed = used <= limit
        return window

    async def peek(self, key: str, limit: int, period: int) -> Decision:
        now = self._clock()
        window = self._windows.get(key)
        if window is None or window.reset <= now:
            return Decision(limit > 0, limit, 0, now + period)
        return Decision(window.used < limit, limit, window.used, window.reset)

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
        self._windows = {k: v for k, v in self._windows.items() if v.reset > now}
        excess = len(self._windows) - self._max_keys + 1
        if excess > 0:
            for key in list(self._windows)[:excess]:
                del self._windows[key]
