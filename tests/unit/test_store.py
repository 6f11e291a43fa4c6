"""The metadata store: the same operations on SQLite (always) and on PostgreSQL (when
APP_TEST_DATABASE_URL is set; each run in a fresh schema that is dropped afterwards)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from app.store import Store
from app.store.engine import make_engine, upgrade
from app.store.records import Duplicate, User

PG_URL = os.environ.get("APP_TEST_DATABASE_URL", "")


def _search_path(engine: Any, schema: str) -> None:
    """Every pooled connection of `engine` works in `schema` (SQLAlchemy's recipe)."""

    @sa.event.listens_for(engine.sync_engine, "connect", insert=True)
    def _set(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET SESSION search_path TO "{schema}"')
        cursor.close()
        dbapi_connection.autocommit = autocommit


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
        try:
            yield opened
        finally:
            await opened.close()
        return
    if not PG_URL:
        pytest.skip("APP_TEST_DATABASE_URL is not set: the PostgreSQL store test did not run")
    schema = f"test_store_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL)  # the production engine, pointed at the fresh schema
    _search_path(engine, schema)
    opened = Store(engine)
    try:
        await upgrade(engine)
        yield opened
    finally:
        await opened.close()
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def _user(store: Store, login: str, *, admin: bool = False) -> User:
    return await store.create_user(
        login, email=f"{login}@example.com", password_hash="h", is_admin=admin
    )


def _utc(value: datetime) -> None:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - value) < timedelta(hours=1)


async def test_migrations_are_idempotent(store: Store) -> None:
    await upgrade(store.engine)
    await upgrade(store.engine)
    await store.ping()
    async with store.read() as conn:
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    assert len(version) == 1


async def test_users(store: Store) -> None:
    alice = await _user(store, "Alice", admin=True)
    assert (alice.login, alice.is_admin, alice.email) == ("Alice", True, "Alice@example.com")
    _utc(alice.created_at)
    for spelled in ("alice", "ALICE", "Alice"):
        found = await store.user_by_login(spelled)
        assert found is not None and found.id == alice.id and found.login == "Alice"
    with pytest.raises(Duplicate):
        await _user(store, "aLiCe")
    bob = await _user(store, "bob")
    assert bob.id > alice.id
    assert await store.user_by_id(bob.id) == await store.user_by_login("bob")
    assert await store.user_by_login("nobody") is None
    assert await store.user_by_id(10_000) is None
    assert [u.login for u in await store.list_users()] == ["Alice", "bob"]
    assert [u.login for u in await store.list_users(since=alice.id)] == ["bob"]
    assert [u.login for u in await store.list_users(limit=1)] == ["Alice"]
    assert await store.count_users() == 2
    await store.set_password_hash(bob.id, "new-hash")
    changed = await store.user_by_id(bob.id)
    assert changed is not None and changed.password_hash == "new-hash"
    found = await store.user_by_id(alice.id)
    assert found is not None
    _utc(found.created_at)


async def test_tokens(store: Store) -> None:
    alice, bob = await _user(store, "alice"), await _user(store, "bob")
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    token = await store.create_token(
        alice.id,
        name="ci",
        token_hash="a" * 64,
        last_eight="abcdefgh",
        scopes=["write", "read", "read"],
        expires_at=later,
    )
    assert token.scopes == frozenset({"read", "write"})
    found = await store.token_by_hash("a" * 64)
    assert found is not None
    stored, owner = found
    assert stored.id == token.id and owner.id == alice.id and owner.login == "alice"
    assert stored.scopes == frozenset({"read", "write"})
    assert stored.expires_at == later and stored.last_used_at is None
    _utc(stored.created_at)
    assert await store.token_by_hash("b" * 64) is None
    with pytest.raises(sa.exc.IntegrityError):  # the hash is unique
        await store.create_token(
            bob.id, name="x", token_hash="a" * 64, last_eight="x", scopes=["read"]
        )
    await store.touch_token(token.id)
    [listed] = await store.list_tokens(alice.id)
    assert listed.last_used_at is not None
    _utc(listed.last_used_at)
    assert await store.list_tokens(bob.id) == []
    assert not await store.delete_token(bob.id, token.id)  # not bob's token
    assert await store.delete_token(alice.id, token.id)
    assert await store.token_by_hash("a" * 64) is None


async def test_repositories_and_visibility(store: Store) -> None:
    alice, bob, carol = (
        await _user(store, "alice"),
        await _user(store, "bob"),
        await _user(store, "carol"),
    )
    root = await _user(store, "root", admin=True)
    pub = await store.create_repo(
        alice, "Pub", description="d", private=False, default_branch="main"
    )
    priv = await store.create_repo(
        alice, "priv", description="", private=True, default_branch="trunk"
    )
    other = await store.create_repo(
        bob, "pub", description="", private=False, default_branch="main"
    )
    assert (pub.owner, pub.name, pub.full_name, pub.private) == ("alice", "Pub", "alice/Pub", False)
    with pytest.raises(Duplicate):
        await store.create_repo(alice, "PUB", description="", private=False, default_branch="main")
    found = await store.repo_by_name("ALICE", "pub")
    assert found is not None and found.id == pub.id and found.name == "Pub"
    by_id = await store.repo_by_id(priv.id)
    assert by_id is not None and by_id.default_branch == "trunk" and by_id.private
    _utc(by_id.created_at)
    assert await store.repo_by_name("alice", "nothing") is None

    await store.set_collaborator(priv.id, carol.id, "read")

    async def names(viewer: User | None, **kw: Any) -> tuple[list[str], int]:
        repos, total = await store.list_repos(viewer, **kw)
        return [r.full_name for r in repos], total

    assert await names(None) == (["alice/Pub", "bob/pub"], 2)
    assert await names(bob) == (["alice/Pub", "bob/pub"], 2)
    assert await names(carol) == (["alice/priv", "alice/Pub", "bob/pub"], 3)
    assert await names(alice) == (["alice/priv", "alice/Pub", "bob/pub"], 3)
    assert await names(root) == (["alice/priv", "alice/Pub", "bob/pub"], 3)
    assert await names(carol, owner_id=alice.id) == (["alice/priv", "alice/Pub"], 2)
    assert await names(None, offset=1, limit=1) == (["bob/pub"], 2)
    assert await names(alice, member_id=carol.id) == (["alice/priv"], 1)
    assert await names(root, private=True) == (["alice/priv"], 1)
    assert other.id not in (pub.id, priv.id)


async def test_update_rename_push_and_delete(store: Store) -> None:
    alice = await _user(store, "alice")
    repo = await store.create_repo(alice, "a", description="", private=False, default_branch="main")
    await store.create_repo(alice, "b", description="", private=False, default_branch="main")
    await store.update_repo(repo.id, name="Renamed", description="new", private=True)
    renamed = await store.repo_by_name("alice", "renamed")
    assert renamed is not None
    assert (renamed.name, renamed.description, renamed.private) == ("Renamed", "new", True)
    with pytest.raises(Duplicate):
        await store.update_repo(repo.id, name="B")
    assert renamed.pushed_at is None
    await store.mark_pushed(repo.id)
    pushed = await store.repo_by_id(repo.id)
    assert pushed is not None and pushed.pushed_at is not None
    _utc(pushed.pushed_at)

    bob = await _user(store, "bob")
    await store.set_collaborator(repo.id, bob.id, "write")
    assert await store.delete_repo(repo.id)
    assert not await store.delete_repo(repo.id)
    assert await store.repo_by_id(repo.id) is None
    assert await store.permission_of(repo.id, bob.id) is None


async def test_collaborators(store: Store) -> None:
    alice, bob, carol = (
        await _user(store, "alice"),
        await _user(store, "bob"),
        await _user(store, "carol"),
    )
    repo = await store.create_repo(alice, "r", description="", private=True, default_branch="main")
    assert await store.permission_of(repo.id, bob.id) is None
    assert await store.set_collaborator(repo.id, bob.id, "read") is True
    assert await store.set_collaborator(repo.id, bob.id, "write") is False
    assert await store.set_collaborator(repo.id, carol.id, "admin") is True
    assert await store.permission_of(repo.id, bob.id) == "write"
    listed, total = await store.list_collaborators(repo.id)
    assert total == 2
    assert [(c.user.login, c.permission) for c in listed] == [("bob", "write"), ("carol", "admin")]
    page, total = await store.list_collaborators(repo.id, offset=1, limit=1)
    assert [c.user.login for c in page] == ["carol"] and total == 2
    assert await store.remove_collaborator(repo.id, bob.id)
    assert not await store.remove_collaborator(repo.id, bob.id)
    assert await store.permission_of(repo.id, bob.id) is None


async def test_events(store: Store) -> None:
    alice = await _user(store, "alice")
    one = await store.create_repo(alice, "one", description="", private=False, default_branch="m")
    two = await store.create_repo(alice, "two", description="", private=False, default_branch="m")
    assert await store.last_event_id() == 0
    first = await store.add_events(
        [
            (one.id, "alice/one", "push", "alice", '{"n":1}'),
            (one.id, "alice/one", "branch.created", "alice", '{"n":2}'),
        ]
    )
    second = await store.add_events([(two.id, "alice/two", "push", None, '{"n":3}')])
    ids = [e.id for e in first + second]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert await store.last_event_id() == ids[-1]
    listed = await store.list_events([one.id, two.id])
    assert [(e.id, e.type, e.actor, e.payload) for e in listed] == [
        (ids[0], "push", "alice", '{"n":1}'),
        (ids[1], "branch.created", "alice", '{"n":2}'),
        (ids[2], "push", None, '{"n":3}'),
    ]
    _utc(listed[0].created_at)
    assert [e.id for e in await store.list_events([one.id], since_id=ids[0])] == [ids[1]]
    assert [e.id for e in await store.list_events([one.id, two.id], limit=1)] == [ids[0]]
    assert await store.list_events([]) == []
    # Events outlive their repository (repository.deleted must still replay).
    await store.delete_repo(one.id)
    assert len(await store.list_events([one.id])) == 2


async def test_concurrent_writers_queue_instead_of_failing(store: Store) -> None:
    """SQLite: BEGIN IMMEDIATE + busy_timeout; PostgreSQL: ordinary concurrency."""
    users = await asyncio.gather(*(_user(store, f"u{n}") for n in range(20)))
    assert len({u.id for u in users}) == 20
    owner = users[0]
    repos = await asyncio.gather(
        *(
            store.create_repo(owner, f"r{n}", description="", private=False, default_branch="m")
            for n in range(10)
        )
    )
    added = await asyncio.gather(
        *(store.add_events([(r.id, r.full_name, "push", None, "{}")]) for r in repos)
    )
    assert len({batch[0].id for batch in added}) == 10
    assert await store.count_users() == 20
    results = await asyncio.gather(
        *(_user(store, "same") for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, User) for r in results) == 1
    assert sum(isinstance(r, Duplicate) for r in results) == 4


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    try:
        async with store.read() as conn:
            mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar()
            busy = (await conn.execute(sa.text("PRAGMA busy_timeout"))).scalar()
            fks = (await conn.execute(sa.text("PRAGMA foreign_keys"))).scalar()
        assert (mode, fks) == ("wal", 1)
        assert busy is not None and int(busy) >= 5000
    finally:
        await store.close()


@pytest.mark.postgres
async def test_server_runs_on_postgresql_through_app_database_url(tmp_path: Path) -> None:
    """The whole server on APP_DATABASE_URL (a fresh database): migrate, create, push, clone."""
    if not PG_URL:
        pytest.skip("APP_TEST_DATABASE_URL is not set: the PostgreSQL server test did not run")
    from sqlalchemy.engine import make_url

    from tests.helpers import PASSWORD, Git, make_settings, start_server

    name = f"test_server_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        server = await start_server(make_settings(tmp_path, database_url=url))
        try:
            assert server.ctx.store.dialect == "postgresql"
            alice = await server.user("alice")
            repo = await server.repo(alice, "pg", private=True)
            home = tmp_path / "home"
            home.mkdir()
            git = Git(home)
            sha = await git.make_worktree(tmp_path / "w", {"f.txt": "on postgres\n"})
            push_url = server.git_url("alice/pg", "alice", PASSWORD)
            (await git("push", "-q", push_url, "main", cwd=tmp_path / "w")).check()
            (await git("clone", "-q", push_url, str(tmp_path / "c"))).check()
            assert (await git("rev-parse", "HEAD", cwd=tmp_path / "c")).check().out.strip() == sha
            events = await server.ctx.store.list_events([repo.id])
            assert [e.type for e in events][-2:] == ["push", "branch.created"]
        finally:
            await server.test_server.close()
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
