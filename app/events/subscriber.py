"""One event subscriber (one WebSocket): subscriptions, a bounded queue, replay then live.

No task runs for an idle subscriber. `offer()` (called by the hub, never blocking) puts
work in the queue and starts a worker task only if none is running; the worker sends
everything queued, in order, then ends. Replays run in that same worker, so replayed
and live events can never interleave.

Replay without gap or duplicate: on `subscribe(..., since_id)` the names are registered
first (live events for them queue up behind the replay job, and their threshold is
"hold everything"), then the worker reads the store after since_id until it is caught
up, then the held live events pass only if their id is above the last id the store gave.
The store hands out ids in commit order, so every event the replay did not see has a
larger id and arrives live.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from app.events.wire import Outgoing, outgoing
from app.store.records import Event

log = logging.getLogger(__name__)

ALL = "*"  # the subscription to every repository the viewer may read
HOLD = 2**63  # threshold while a replay for that name is pending: hold every live event
REPLAY_PAGE = 200
MAX_SUBSCRIPTIONS = 100

# Close codes (RFC 6455)
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011

Send = Callable[[str], Awaitable[None]]
CloseRequest = Callable[[int, str], None]
ReplaySource = Callable[[list[str] | None, int, int], Awaitable[list[Event]]]


class Gate(Protocol):
    """May this viewer read the repository of this event? `cached` answers from memory
    (None: unknown), `check` asks the store."""

    def cached(self, viewer: Any, item: Outgoing) -> bool | None: ...
    async def check(self, viewer: Any, item: Outgoing) -> bool: ...


@dataclass(frozen=True, slots=True)
class Replay:
    names: tuple[str, ...] | None  # None: every repository
    since_id: int


Work = Outgoing | Replay | str


class Connection:
    """The hub-facing side of one WebSocket. Knows nothing about aiohttp: it is given a
    `send` coroutine function and a `request_close` callback."""

    __slots__ = (
        "_gate",
        "_limit",
        "_names",
        "_pending",
        "_queue",
        "_replay_source",
        "_request_close",
        "_send",
        "_worker",
        "closed",
        "viewer",
    )

    def __init__(
        self,
        *,
        send: Send,
        request_close: CloseRequest,
        gate: Gate,
        replay_source: ReplaySource,
        viewer: Any,
        queue_size: int,
    ) -> None:
        self._send = send
        self._request_close = request_close
        self._gate = gate
        self._replay_source = replay_source
        self._limit = queue_size
        self.viewer = viewer
        # subscribed key ("owner/name" lower-cased, or ALL) -> live events with an id at
        # or below this value are dropped (0: none; HOLD: a replay is pending)
        self._names: dict[str, int] = {}
        self._pending: dict[str, int] = {}  # key -> replays queued for it
        self._queue: collections.deque[Work] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self.closed = False

    # Called by the hub -------------------------------------------------------------
    def offer(self, item: Outgoing) -> None:
        if self.closed:
            return
        names = self._names
        if item.repo_key in names or ALL in names:
            self._push(item)

    def interrupted(self) -> None:
        self.abort(INTERNAL_ERROR, "event stream interrupted; resume with since_id")

    # Called by the WebSocket handler ------------------------------------------------
    @property
    def subscriptions(self) -> list[str]:
        return sorted(self._names)

    def subscribe(self, names: Iterable[str] | None, since_id: int | None) -> list[str]:
        """Register names (None: every repository), queue a replay if since_id is given.
        Returns the keys now subscribed by this call."""
        keys = [ALL] if names is None else list(dict.fromkeys(n.lower() for n in names))
        if len(set(self._names) | set(keys)) > MAX_SUBSCRIPTIONS:
            raise ValueError(f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        for key in keys:
            if since_id is None:
                self._names.setdefault(key, 0)
            else:
                self._names[key] = HOLD
                self._pending[key] = self._pending.get(key, 0) + 1
        if since_id is not None:
            self._push(Replay(None if names is None else tuple(keys), since_id))
        return keys

    def unsubscribe(self, names: Iterable[str] | None) -> list[str]:
        keys = list(self._names) if names is None else [n.lower() for n in names]
        for key in keys:
            self._names.pop(key, None)
        return keys

    def send_text(self, text: str) -> None:
        """Queue a control message (ack, pong, error) in order with the events."""
        if not self.closed:
            self._push(text)

    def abort(self, code: int, reason: str) -> None:
        """Stop delivering now and ask the handler to close the socket with `code`."""
        if self.closed:
            return
        self.shutdown()
        self._request_close(code, reason)

    def shutdown(self) -> None:
        self.closed = True
        self._queue.clear()
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    # The worker ---------------------------------------------------------------------
    def _push(self, work: Work) -> None:
        if len(self._queue) >= self._limit:
            log.info("event subscriber fell %d messages behind: closing it", len(self._queue))
            self.abort(POLICY_VIOLATION, "subscriber too slow: resume with since_id")
            return
        self._queue.append(work)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._queue and not self.closed:
                work = self._queue.popleft()
                if isinstance(work, Outgoing):
                    await self._deliver(work)
                elif isinstance(work, str):
                    await self._send(work)
                else:
                    await self._replay(work)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, RuntimeError) as exc:
            log.debug("event subscriber went away: %s", exc)
            self.shutdown()
        except Exception:
            log.exception("event subscriber failed")
            self.abort(INTERNAL_ERROR, "internal error")
        finally:
            if asyncio.current_task() is self._worker:
                self._worker = None

    def _threshold(self, key: str) -> int | None:
        own = self._names.get(key)
        every = self._names.get(ALL)
        if own is None:
            return every
        return own if every is None else max(own, every)

    async def _deliver(self, item: Outgoing) -> None:
        threshold = self._threshold(item.repo_key)
        if threshold is None or item.id <= threshold:
            return
        await self._send_allowed(item)

    async def _send_allowed(self, item: Outgoing) -> None:
        allowed = self._gate.cached(self.viewer, item)
        if allowed is None:
            allowed = await self._gate.check(self.viewer, item)
        if allowed and not self.closed:
            await self._send(item.text)

    async def _replay(self, job: Replay) -> None:
        last = job.since_id
        names = list(job.names) if job.names is not None else None
        try:
            while True:
                events = await self._replay_source(names, last, REPLAY_PAGE)
                for event in events:
                    last = max(last, event.id)
                    if self._is_subscribed(event.repo_name.lower()):
                        await self._send_allowed(outgoing(event))
                if len(events) < REPLAY_PAGE:
                    break
        finally:
            self._replay_done(job, last)

    def _is_subscribed(self, key: str) -> bool:
        return key in self._names or ALL in self._names

    def _replay_done(self, job: Replay, last: int) -> None:
        for key in job.names if job.names is not None else (ALL,):
            count = self._pending.get(key, 0) - 1
            if count > 0:
                self._pending[key] = count
                continue
            self._pending.pop(key, None)
            if self._names.get(key) == HOLD:
                self._names[key] = last
