"""The event log: ids come from the database, so they increase across instances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa

from app.store.base import StoreBase, must_utc, utcnow
from app.store.records import Event
from app.store.tables import events


def _event_from_row(row: Any) -> Event:
    m = row._mapping
    return Event(
        id=m["id"],
        repo_id=m["repo_id"],
        repo_name=m["repo_name"],
        type=m["type"],
        actor=m["actor"],
        payload=m["payload"],
        created_at=must_utc(m["created_at"]),
    )


# pg_advisory_lock key that orders "store then publish" across instances (migrations
# use 727170001).
EMIT_LOCK_KEY = 727170002
Publish = Callable[[list[Event]], Awaitable[None]]


class EventStore(StoreBase):
    _emit_lock: asyncio.Lock | None = None

    async def add_events_and_publish(
        self, items: list[tuple[int, str, str, str | None, str]], publish: Publish
    ) -> list[Event]:
        """add_events, then `publish` them, with nobody else doing the same in between.

        Live subscribers then see events in id order, across instances too: in this
        process an asyncio lock, and on PostgreSQL an advisory lock held from before the
        insert until after the publish. (SQLite is one machine's database: the
        in-process lock orders one instance.)
        """
        if self._emit_lock is None:
            self._emit_lock = asyncio.Lock()
        async with self._emit_lock, self._cluster_emit_lock():
            stored = await self.add_events(items)
            await publish(stored)
        return stored

    @asynccontextmanager
    async def _cluster_emit_lock(self) -> AsyncIterator[None]:
        if self.dialect != "postgresql":
            yield
            return
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": EMIT_LOCK_KEY})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": EMIT_LOCK_KEY})
                await conn.commit()

    async def add_events(self, items: list[tuple[int, str, str, str | None, str]]) -> list[Event]:
        """Store (repo_id, repo_name, type, actor, payload_json) in one transaction, in order."""
        now = utcnow()
        stored = []
        async with self.write() as conn:
            if self.dialect == "postgresql":
                # Serialize inserts so ids commit in the order they were assigned: a
                # reader that saw id N never later finds a smaller id appear.
                await conn.execute(sa.text("LOCK TABLE events IN EXCLUSIVE MODE"))
            for repo_id, repo_name, type_, actor, payload in items:
                result = await conn.execute(
                    events.insert().values(
                        repo_id=repo_id,
                        repo_name=repo_name,
                        type=type_,
                        actor=actor,
                        payload=payload,
                        created_at=now,
                    )
                )
                event_id = result.inserted_primary_key[0] if result.inserted_primary_key else 0
                stored.append(Event(event_id, repo_id, repo_name, type_, actor, payload, now))
        return stored

    async def list_events(
        self, repo_ids: list[int], *, since_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Events of these repositories with id > since_id, oldest first."""
        if not repo_ids:
            return []
        query = (
            sa.select(events)
            .where(events.c.repo_id.in_(repo_ids), events.c.id > since_id)
            .order_by(events.c.id)
            .limit(limit)
        )
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_event_from_row(row) for row in rows]

    async def last_event_id(self) -> int:
        async with self.read() as conn:
            return int((await conn.execute(sa.select(sa.func.max(events.c.id)))).scalar() or 0)

    async def events_by_names(
        self, names: list[str] | None, *, since_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Events with id > since_id of repositories named `owner/name` (case-insensitive;
        None: of every repository), oldest first. The WebSocket replay reads this."""
        query = sa.select(events).where(events.c.id > since_id)
        if names is not None:
            if not names:
                return []
            query = query.where(sa.func.lower(events.c.repo_name).in_([n.lower() for n in names]))
        query = query.order_by(events.c.id).limit(limit)
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_event_from_row(row) for row in rows]

    def _repo_events_where(self, repo_id: int, since_id: int) -> list[sa.ColumnElement[bool]]:
        # SQLite may hand a deleted repository's id to the next one: only events from the
        # latest repository.created of this id on belong to the repository that exists now.
        start = (
            sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))
            .where(events.c.repo_id == repo_id, events.c.type == "repository.created")
            .scalar_subquery()
        )
        return [events.c.repo_id == repo_id, events.c.id > since_id, events.c.id >= start]

    async def page_repo_events(
        self, repo_id: int, *, since_id: int = 0, offset: int = 0, limit: int = 30
    ) -> tuple[list[Event], int]:
        """One page of a repository's events after since_id, oldest first, and the total."""
        where = self._repo_events_where(repo_id, since_id)
        query = sa.select(events).where(*where).order_by(events.c.id).offset(offset).limit(limit)
        count = sa.select(sa.func.count()).select_from(events).where(*where)
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
            total = int((await conn.execute(count)).scalar() or 0)
        return [_event_from_row(row) for row in rows], total
