"""Admission control for git processes (upload-pack, receive-pack, info/refs).

At most `max_total` run at once, at most `max_per_repo` on one repository and
`max_per_client` for one client address. Past that a request waits in a short FIFO
queue (`queue_size` places, `queue_timeout` seconds); past the queue it is refused at
once with `Unavailable` (503 + Retry-After), so an overload turns into quick, clear
refusals instead of a pile of processes. Pure asyncio: no aiohttp, no processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from app.errors import Unavailable


@dataclass
class _Waiter:
    repo: str
    client: str
    future: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Admission:
    def __init__(
        self,
        *,
        max_total: int,
        max_per_repo: int,
        max_per_client: int,
        queue_size: int,
        queue_timeout: float,
    ) -> None:
        self.max_total = max_total
        self.max_per_repo = max_per_repo
        self.max_per_client = max_per_client
        self.queue_size = queue_size
        self.queue_timeout = queue_timeout
        self.active = 0
        self.refused = 0
        self._per_repo: dict[str, int] = {}
        self._per_client: dict[str, int] = {}
        self._queue: deque[_Waiter] = deque()
        self.closed = False

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _fits(self, repo: str, client: str) -> bool:
        return (
            self.active < self.max_total
            and self._per_repo.get(repo, 0) < self.max_per_repo
            and self._per_client.get(client, 0) < self.max_per_client
        )

    def _take(self, repo: str, client: str) -> None:
        self.active += 1
        self._per_repo[repo] = self._per_repo.get(repo, 0) + 1
        self._per_client[client] = self._per_client.get(client, 0) + 1

    def _give_back(self, repo: str, client: str) -> None:
        self.active -= 1
        for table, key in ((self._per_repo, repo), (self._per_client, client)):
            left = table[key] - 1
            if left:
                table[key] = left
            else:
                del table[key]
        self._wake()

    def _wake(self) -> None:
        """Hand freed slots to waiters in order (skipping those whose repo/client is full)."""
        for waiter in list(self._queue):
            if waiter.future.done():
                self._queue.remove(waiter)
            elif self._fits(waiter.repo, waiter.client):
                self._queue.remove(waiter)
                self._take(waiter.repo, waiter.client)
                waiter.future.set_result(None)

    def _refuse(self, why: str) -> Unavailable:
        self.refused += 1
        retry = max(1, math.ceil(self.queue_timeout)) if self.queue_timeout else 1
        return Unavailable(f"server busy: {why}; try again later", retry_after=retry)

    @contextlib.asynccontextmanager
    async def slot(self, repo: str, client: str) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block, or raise Unavailable."""
        await self._acquire(repo, client)
        try:
            yield
        finally:
            self._give_back(repo, client)

    async def _acquire(self, repo: str, client: str) -> None:
        if self.closed:
            raise self._refuse("shutting down")
        # Waiters only wait for their own repository or client to free up (a free global
        # slot is handed to them at once), so a request that fits now may go first.
        if self._fits(repo, client):
            self._take(repo, client)
            return
        if len(self._queue) >= self.queue_size or self.queue_timeout <= 0:
            raise self._refuse("too many git operations in progress")
        waiter = _Waiter(repo, client)
        self._queue.append(waiter)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await asyncio.shield(waiter.future)
        except TimeoutError:
            if waiter.future.done():  # granted at the last moment: keep it
                return
            waiter.future.cancel()
            self._remove(waiter)
            raise self._refuse("too many git operations in progress") from None
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._give_back(repo, client)  # granted, but the client went away
            else:
                waiter.future.cancel()
                self._remove(waiter)
            raise

    def _remove(self, waiter: _Waiter) -> None:
        with contextlib.suppress(ValueError):
            self._queue.remove(waiter)

    def close(self) -> None:
        """Refuse new work (draining); what runs keeps its slot."""
        self.closed = True
