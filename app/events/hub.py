"""The EventHub seam. Services publish events that are already stored (they have ids);
hubs only deliver. MemoryHub is the real single-instance default; RedisHub (redis_hub.py)
carries the same calls between instances and feeds a MemoryHub in each of them, so the
WebSocket code never knows which one runs.

Delivery never waits for a subscriber: `offer()` only appends to that subscriber's own
bounded queue (a full one closes itself), so one slow reader stalls nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from app.events.wire import Notice, Outgoing, outgoing
from app.store.records import Event

log = logging.getLogger(__name__)

NoticeCallback = Callable[[Notice], None]


class Subscriber(Protocol):
    def offer(self, item: Outgoing) -> None:
        """Take an event without blocking (a full subscriber closes itself)."""

    def interrupted(self) -> None:
        """Live delivery broke (the Redis link was lost): events may have been missed, so
        the subscriber should close and let its client resume with since_id."""


class EventHub(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, events: Iterable[Event]) -> None: ...
    async def publish_notice(self, notice: Notice) -> None: ...
    def add(self, subscriber: Subscriber) -> None: ...
    def discard(self, subscriber: Subscriber) -> None: ...
    def on_notice(self, callback: NoticeCallback) -> None: ...
    @property
    def subscriber_count(self) -> int: ...


class MemoryHub:
    """Fan-out inside one process."""

    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()
        self._notice_callbacks: list[NoticeCallback] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subscribers.clear()
        self._notice_callbacks.clear()

    async def publish(self, events: Iterable[Event]) -> None:
        self.deliver(events)

    async def publish_notice(self, notice: Notice) -> None:
        self.deliver_notice(notice)

    def deliver(self, events: Iterable[Event]) -> None:
        """Offer each event to every local subscriber, serialized once."""
        for event in events:
            item = outgoing(event, live=True)
            for subscriber in tuple(self._subscribers):
                try:
                    subscriber.offer(item)
                except Exception:
                    log.exception("event subscriber failed; dropping it")
                    self._subscribers.discard(subscriber)

    def deliver_notice(self, notice: Notice) -> None:
        for callback in tuple(self._notice_callbacks):
            try:
                callback(notice)
            except Exception:
                log.exception("event notice callback failed")

    def interrupt_all(self) -> None:
        """Tell every subscriber that live delivery had a gap."""
        for subscriber in tuple(self._subscribers):
            try:
                subscriber.interrupted()
            except Exception:
                log.exception("event subscriber failed on interruption")

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def discard(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def on_notice(self, callback: NoticeCallback) -> None:
        self._notice_callbacks.append(callback)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
