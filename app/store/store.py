"""The Store: one object over one engine, with each area's queries mixed in."""

from __future__ import annotations

from app.store.engine import make_engine, upgrade
from app.store.events import EventStore
from app.store.repos import RepoStore
from app.store.users import UserStore


class Store(UserStore, RepoStore, EventStore):
    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, lookup_ttl: float = 0.0) -> Store:
        store = cls(make_engine(url), lookup_ttl=lookup_ttl)
        if migrate:
            await upgrade(store.engine)
        return store
