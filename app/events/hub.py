"""The EventHub seam. Services publish events that are already stored (they have ids);
hubs only deliver. MemoryHub is the real single-instance default."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

from app.store.records import Event


class Subscriber(Protocol):
    def offer(self, event: Event) -> None:
        """Take an event without blocking (a full subscriber closes itself)."""


class EventHub(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, events: Iterable[Event]) -> None: ...
    def add(self, subscriber: Subscriber) -> None: ...
    def discard(self, subscriber: Subscriber) -> None: ...


class MemoryHub:
    """Fan-out inside one process: offer() never waits, so one slow subscriber stalls nobody."""

    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()
        self._closed = asyncio.Event()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._closed.set()
        self._subscribers.clear()

    async def publish(self, events: Iterable[Event]) -> None:
        self.deliver(events)

    def deliver(self, events: Iterable[Event]) -> None:
        for event in events:
            for subscriber in list(self._subscribers):
                subscriber.offer(event)

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def discard(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
