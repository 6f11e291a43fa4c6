"""Two stores (two instances) on one PostgreSQL database emitting at once: what they
publish comes out in id order, which is what lets every subscriber see id order."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator

import pytest

from app.store import Store
from app.store.records import Event

DATABASE_URL = os.environ.get("APP_TEST_DATABASE_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not DATABASE_URL, reason="APP_TEST_DATABASE_URL is not set (PostgreSQL)"),
]


async def _admin(statement: str) -> None:
    import asyncpg

    assert DATABASE_URL is not None
    conn = await asyncpg.connect(re.sub(r"^postgresql\+asyncpg://", "postgresql://", DATABASE_URL))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    assert DATABASE_URL is not None
    name = f"events_{secrets.token_hex(6)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_two_instances_publish_in_id_order(database_url: str) -> None:
    one = await Store.open(database_url)
    two = await Store.open(database_url, migrate=False)
    published: list[int] = []

    async def publish(events: list[Event]) -> None:
        await asyncio.sleep(0.002 * (events[0].id % 3))  # uneven publish times
        published.extend(e.id for e in events)

    try:

        async def emit(store: Store, n: int) -> None:
            await store.add_events_and_publish([(1, "o/r", "push", None, f'{{"n":{n}}}')], publish)

        await asyncio.gather(*(emit(one if n % 2 else two, n) for n in range(40)))
    finally:
        await one.close()
        await two.close()
    assert len(published) == 40
    assert published == sorted(published)
