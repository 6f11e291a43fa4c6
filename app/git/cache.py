"""A bounded LRU of immutable git data, keyed by repository and full object id.

Objects named by their full id never change, so trees, commits, small blobs and the
commit lists of a history walk from a given commit can be kept. Keys always include the
repository's pool key (id and path): an object is only ever served to readers of the
repository it was read from, never across repositories.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class ObjectCache:
    """LRU bounded by an estimate of bytes held; max_bytes=0 disables it."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()

    def get(self, key: Hashable) -> object | None:
        item = self._data.get(key)
        if item is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return item[0]

    def put(self, key: Hashable, value: object, cost: int) -> None:
        cost += 200  # the key, the tuple and the dict slot
        if cost > self.max_bytes // 8:
            return  # one entry never takes more than an eighth of the cache
        old = self._data.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._data[key] = (value, cost)
        self.size += cost
        while self.size > self.max_bytes and self._data:
            _, (_, dropped) = self._data.popitem(last=False)
            self.size -= dropped

    def clear(self) -> None:
        self._data.clear()
        self.size = 0

    def __len__(self) -> int:
        return len(self._data)
