"""The event log: ids come from the database, so they increase across instances."""

from __future__ import annotations

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


class EventStore(StoreBase):
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
