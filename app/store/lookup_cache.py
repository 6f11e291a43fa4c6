"""A per-process cache of the two lookups every request makes (repository by name,
collaborator permission).

Through SQLAlchemy's async engine each lookup costs ~0.8 ms of CPU on the event loop,
more than the git read it guards (bench/api_bench.py). Entries live `ttl` seconds at
most; this process's own writes clear the cache at once, and other instances' writes
clear it through the hub's access notices (services.bootstrap wires that). A missing
repository is never remembered, so one created elsewhere is found at once.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

_MISSING = object()


class LookupCache:
    def __init__(self, ttl: float, max_entries: int = 20_000):
        self.ttl = ttl
        self._max = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, key: Hashable) -> Any:
        """The cached value, or `MISSING`."""
        entry = self._entries.get(key)
        if entry is None:
            return _MISSING
        expires, value = entry
        if expires < time.monotonic():
            self._entries.pop(key, None)
            return _MISSING
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if not self.enabled:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self._entries.clear()


MISSING = _MISSING
