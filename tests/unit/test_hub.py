"""The hub and one subscriber's queue, without sockets: ordering, replay + live with no gap
or duplicate, the bound, notices, and (with Redis) delivery and interruption."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.events.hub import MemoryHub
from app.events.subscriber import Connection
from app.events.wire import AccessChanged, Notice, Outgoing, outgoing
from app.store import Store
from app.store.records import Event


class Everyone:
    """A gate that lets every event through (access is tested end to end)."""

    def cached(self, viewer: Any, item: Outgoing) -> bool | None:
        return None if item.id % 2 else True  # half from "memory", half "asked"

    async def check(self, viewer: Any, item: Outgoing) -> bool:
        await asyncio.sleep(0)
        return True


class Recorder:
    def __init__(self, store: Store | None = None, queue_size: int = 100) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closes: list[tuple[int, str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.store = store

        async def replay(names: list[str] | None, since_id: int, limit: int) -> list[Event]:
            assert self.store is not None
            return await self.store.events_by_names(names, since_id=since_id, limit=limit)

        self.connection = Connection(
            send=self.send,
            request_close=lambda code, reason: self.closes.append((code, reason)),
            gate=Everyone(),
            replay_source=replay,
            viewer=None,
            queue_size=queue_size,
        )

    async def send(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(json.loads(text))

    def ids(self) -> list[int]:
        return [m["id"] for m in self.sent if m.get("type") == "event"]

    async def settle(self) -> None:
        """Until the worker is idle (a generous bound, never a speed check)."""
        for _ in range(6000):
            await asyncio.sleep(0.01 if self.connection._worker else 0)
            if self.connection._worker is None:
                await asyncio.sleep(0)
                if self.connection._worker is None:
                    return
        raise AssertionError("the subscriber never became idle")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    try:
        yield opened
    finally:
        await opened.close()


async def add(store: Store, repo_name: str, count: int = 1) -> list[Event]:
    rows = [(1 if repo_name == "o/r" else 2, repo_name, "push", "o", "{}") for _ in range(count)]
    return await store.add_events(rows)


async def test_memory_hub_offers_in_order_and_serializes_once() -> None:
    hub = MemoryHub()
    subs = [Recorder() for _ in range(3)]
    for sub in subs:
        sub.connection.subscribe(["o/r"], None)
        hub.add(sub.connection)
    events = [Event(n, 1, "O/R", "push", "o", f'{{"n":{n}}}', _now()) for n in (1, 2, 3)]
    await hub.publish(events)
    await subs[0].settle()
    for sub in subs:
        assert sub.ids() == [1, 2, 3]
        assert sub.sent[0]["payload"] == {"n": 1} and sub.sent[0]["repo"] == "O/R"
    hub.discard(subs[0].connection)
    assert hub.subscriber_count == 2


async def test_replay_then_live_has_no_gap_and_no_duplicate(store: Store) -> None:
    old = await add(store, "o/r", 3)
    await add(store, "o/other", 2)  # not subscribed: never sent
    sub = Recorder(store)
    sub.connection.subscribe(["o/r"], since_id=old[0].id)
    # Before the replay ran: a live copy of a stored event (published late) and a new one.
    [new] = await add(store, "o/r")
    sub.connection.offer(outgoing(old[2], live=True))
    sub.connection.offer(outgoing(new, live=True))
    await sub.settle()
    assert sub.ids() == [old[1].id, old[2].id, new.id]
    [later] = await add(store, "o/r")
    sub.connection.offer(outgoing(later, live=True))
    sub.connection.offer(outgoing(new, live=True))  # a duplicate after going live
    await sub.settle()
    assert sub.ids() == [old[1].id, old[2].id, new.id, later.id]


async def test_subscribing_to_everything_replays_every_repository(store: Store) -> None:
    stored = [*(await add(store, "o/r", 2)), *(await add(store, "o/other", 2))]
    sub = Recorder(store)
    sub.connection.subscribe(None, since_id=0)
    await sub.settle()
    assert sub.ids() == [e.id for e in stored]


async def test_a_full_queue_closes_with_1008_and_stops_queueing() -> None:
    sub = Recorder(queue_size=3)
    sub.gate.clear()  # the socket accepts nothing
    sub.connection.subscribe(["o/r"], None)
    for n in range(1, 10):
        sub.connection.offer(outgoing(Event(n, 1, "o/r", "push", None, "{}", _now())))
        await asyncio.sleep(0)
    assert sub.closes == [(1008, "subscriber too slow: resume with since_id")]
    assert sub.connection.closed
    sub.gate.set()
    await sub.settle()
    assert sub.ids() == []


async def test_unsubscribed_repositories_are_not_delivered() -> None:
    sub = Recorder()
    sub.connection.subscribe(["o/r", "o/x"], None)
    sub.connection.unsubscribe(["O/X"])
    for n, name in enumerate(("o/r", "o/x", "O/R"), start=1):
        sub.connection.offer(outgoing(Event(n, 1, name, "push", None, "{}", _now())))
    await sub.settle()
    assert sub.ids() == [1, 3]
    assert sub.connection.subscriptions == ["o/r"]


async def test_notices_reach_callbacks_and_interruptions_close() -> None:
    hub = MemoryHub()
    seen: list[Notice] = []
    hub.on_notice(seen.append)
    sub = Recorder()
    hub.add(sub.connection)
    await hub.publish_notice(AccessChanged(7))
    hub.interrupt_all()
    assert seen == [AccessChanged(7)]
    assert sub.closes and sub.closes[0][0] == 1011


REDIS_URL = os.environ.get("APP_TEST_REDIS_URL")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="APP_TEST_REDIS_URL is not set (Redis hub test)")
async def test_redis_hubs_share_events_and_notices_and_report_a_lost_link() -> None:
    from app.events.redis_hub import RedisHub

    assert REDIS_URL is not None
    prefix = f"githost-test-{secrets.token_hex(6)}:"
    one, two = RedisHub(REDIS_URL, prefix), RedisHub(REDIS_URL, prefix)
    await one.start()
    await two.start()
    try:
        sub = Recorder()
        sub.connection.subscribe(["o/r"], None)
        two.add(sub.connection)
        notices: list[Notice] = []
        two.on_notice(notices.append)
        await one.publish([Event(n, 1, "o/r", "push", "o", "{}", _now()) for n in (5, 6)])
        await one.publish_notice(AccessChanged(1))
        for _ in range(500):
            if len(sub.ids()) == 2 and notices:
                break
            await asyncio.sleep(0.01)
        assert sub.ids() == [5, 6] and notices == [AccessChanged(1)]
        # Cut the listener's connection at the server: the subscriber must hear of it.
        await _kill_listener(two)
        for _ in range(500):
            if sub.closes:
                break
            await asyncio.sleep(0.01)
        assert sub.closes and sub.closes[0][0] == 1011
    finally:
        await one.close()
        await two.close()


async def _kill_listener(hub: Any) -> None:
    """CLIENT KILL exactly the listener's connection (found by its local port), nobody
    else's: the Redis server may be shared."""
    import redis.asyncio as aioredis

    sock = hub._pubsub.connection._writer.get_extra_info("socket")
    port = sock.getsockname()[1]
    admin = aioredis.Redis.from_url(REDIS_URL)
    try:
        for client in await admin.client_list(_type="pubsub"):
            if str(client.get("addr", "")).endswith(f":{port}"):
                await admin.client_kill_filter(_id=client["id"])
    finally:
        await admin.aclose()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0)
