"""RedisHub: events and notices travel through one Redis pub/sub channel
(`{prefix}events`); one listener task per instance feeds the local MemoryHub, so a
subscriber on any instance receives what was published on any other.

Every instance receives its own publications back through Redis too: one path, one
order (the order of PUBLISH at the Redis server, which emit() keeps equal to id order).

Redis pub/sub keeps nothing for a disconnected listener. So when the listener's
connection breaks or silently reconnects, local subscribers are told `interrupted()`
and close; clients resume with since_id from the event log, which holds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.events.hub import MemoryHub
from app.events.wire import AccessChanged, Notice, event_from_wire, event_to_wire
from app.store.records import Event

log = logging.getLogger(__name__)
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


class RedisHub(MemoryHub):
    def __init__(self, url: str, prefix: str = "githost:") -> None:
        super().__init__()
        self.channel = f"{prefix}events"
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url)
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._connected_once = False

    async def start(self) -> None:
        """Subscribe before returning: whatever is published afterwards reaches us."""
        await self._subscribe()
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self._drop_pubsub()
        with contextlib.suppress(Exception):
            await self._redis.aclose()
        await super().close()

    async def publish(self, events: Iterable[Event]) -> None:
        messages = [json.dumps(event_to_wire(e), separators=(",", ":")) for e in events]
        if len(messages) == 1:
            await self._redis.publish(self.channel, messages[0])
        elif messages:
            async with self._redis.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.publish(self.channel, message)
                await pipe.execute()

    async def publish_notice(self, notice: Notice) -> None:
        message = {"k": "access", "repo_id": notice.repo_id}
        await self._redis.publish(self.channel, json.dumps(message))

    async def _subscribe(self) -> None:
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)
        # The confirmation proves the subscription is active at the server.
        while True:
            reply = await self._pubsub.parse_response(block=True)
            if reply and str(reply[0], "ascii", "replace").lower() == "subscribe":
                break
        self._pubsub.connection.register_connect_callback(self._on_connect)
        self._connected_once = True

    async def _on_connect(self, connection: Any) -> None:
        """redis-py reconnected the listener by itself: messages may have been lost."""
        if self._connected_once:
            log.warning("event hub: Redis listener reconnected; interrupting subscribers")
            self.interrupt_all()

    async def _drop_pubsub(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    failures = 0
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("event hub: Redis listener failed (%s); interrupting subscribers", exc)
                self.interrupt_all()
                await self._drop_pubsub()
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                continue
            if message and message.get("type") == "message":
                self._dispatch(message["data"])

    def _dispatch(self, raw: bytes) -> None:
        try:
            data = json.loads(raw)
            if data.get("k") == "e":
                self.deliver([event_from_wire(data)])
            elif data.get("k") == "access":
                self.deliver_notice(AccessChanged(int(data["repo_id"])))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("event hub: ignoring a malformed message on %s", self.channel)
