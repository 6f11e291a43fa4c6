"""Events: stored first (the database gives the id), then published; who may read them.

- `emit()` stores one repository's events and publishes them, in id order across
  instances (see EventStore.add_events_and_publish).
- `access_changed()` is what the repository and collaborator services call when who may
  read a repository changed: every instance drops what it cached about that repository,
  so the next event of it is checked against the store again.
- `ReadAccess` answers "may this caller read the repository of this event?" for every
  WebSocket of one process from one shared cache (a public repository costs no query, a
  private one one query per repository and user per ACCESS_TTL seconds, concurrent
  askers share one query).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.auth.access import Access, Principal, effective_access
from app.events.wire import AccessChanged, Notice, Outgoing
from app.services.context import AppContext
from app.store import Store
from app.store.records import Event, Repo

log = logging.getLogger(__name__)

ACCESS_TTL = 10.0  # seconds a cached access decision is trusted without a notice
PUBLISH_TIMEOUT = 5.0
_MAX_CACHED = 20_000

T = TypeVar("T")


async def emit(
    ctx: AppContext, repo: Repo, items: list[tuple[str, dict[str, Any]]], actor: str | None
) -> list[Event]:
    """Store events of one repository in order, then hand them to the hub."""
    if not items:
        return []
    rows = [
        (repo.id, repo.full_name, type_, actor, json.dumps(payload, separators=(",", ":")))
        for type_, payload in items
    ]

    async def publish(stored: list[Event]) -> None:
        try:
            await asyncio.wait_for(ctx.hub.publish(stored), PUBLISH_TIMEOUT)
        except Exception:
            # Stored events are not lost: subscribers replay them with since_id.
            log.exception("publishing %d events failed", len(stored))

    return await ctx.store.add_events_and_publish(rows, publish)


async def access_changed(ctx: AppContext, repo_id: int) -> None:
    """Who may read this repository changed (visibility, a collaborator added, changed or
    removed, the repository deleted): every instance re-checks its subscribers."""
    try:
        await asyncio.wait_for(ctx.hub.publish_notice(AccessChanged(repo_id)), PUBLISH_TIMEOUT)
    except Exception:
        log.exception("publishing an access notice for repository %d failed", repo_id)


def repository_payload(repo: Repo) -> dict[str, Any]:
    return {
        "repository": {
            "id": repo.id,
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": {"login": repo.owner},
            "default_branch": repo.default_branch,
        }
    }


async def replay_events(
    ctx: AppContext, names: list[str] | None, since_id: int, limit: int
) -> list[Event]:
    return await ctx.store.events_by_names(names, since_id=since_id, limit=limit)


async def repo_events_page(
    ctx: AppContext, repo: Repo, *, since_id: int, offset: int, limit: int
) -> tuple[list[Event], int]:
    """The REST listing: events of a repository the caller may read, oldest first."""
    return await ctx.store.page_repo_events(repo.id, since_id=since_id, offset=offset, limit=limit)


@dataclass(frozen=True, slots=True)
class _Cached(Generic[T]):
    at: float  # time.monotonic() when the read that produced it started
    value: T


class ReadAccess:
    """Read access of event subscribers, cached for the whole process (see module doc)."""

    def __init__(self, store: Store, ttl: float = ACCESS_TTL) -> None:
        self._store = store
        self._ttl = ttl
        self._repos: dict[int, _Cached[Repo | None]] = {}
        self._perms: dict[int, dict[int, _Cached[str | None]]] = {}
        self._loading: dict[tuple[str, int, int, int], asyncio.Task[Any]] = {}
        self._generation = 0

    # Invalidation -------------------------------------------------------------------
    def on_notice(self, notice: Notice) -> None:
        if isinstance(notice, AccessChanged):
            self.invalidate(notice.repo_id)

    def invalidate(self, repo_id: int) -> None:
        self._generation += 1  # reads already under way must not refill the cache
        self._repos.pop(repo_id, None)
        self._perms.pop(repo_id, None)

    # Decisions ----------------------------------------------------------------------
    def cached(self, viewer: Any, item: Outgoing) -> bool | None:
        principal: Principal = viewer
        now = time.monotonic()
        entry = self._repos.get(item.repo_id)
        if entry is None or now - entry.at > self._ttl:
            return None
        row = entry.value
        if row is not None and item.private and not row.private and entry.at < item.seen:
            return None  # the event says private, our row says public: read it again
        perm: str | None = None
        if self._needs_permission(principal, row, item):
            assert row is not None and principal.user is not None
            cached = self._perms.get(row.id, {}).get(principal.user.id)
            if cached is None or now - cached.at > self._ttl:
                return None
            perm = cached.value
        return decide(principal, item, row, perm)

    async def check(self, viewer: Any, item: Outgoing) -> bool:
        principal: Principal = viewer
        row = await self._load("repo", item.repo_id, 0, self._fetch_repo)
        perm: str | None = None
        if self._needs_permission(principal, row, item):
            assert row is not None and principal.user is not None
            perm = await self._load("perm", row.id, principal.user.id, self._fetch_perm)
        return decide(principal, item, row, perm)

    @staticmethod
    def _needs_permission(principal: Principal, row: Repo | None, item: Outgoing) -> bool:
        user = principal.user
        return (
            row is not None
            and row.private
            and same_repository(row, item)
            and user is not None
            and not user.is_admin
            and user.id != row.owner_id
        )

    # Loading, one query for all concurrent askers --------------------------------------
    async def _load(self, kind: str, a: int, b: int, fetch: Any) -> Any:
        key = (kind, a, b, self._generation)
        task = self._loading.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(fetch(a, b, self._generation))
            self._loading[key] = task
            task.add_done_callback(lambda _t: self._loading.pop(key, None))
        return await asyncio.shield(task)

    async def _fetch_repo(self, repo_id: int, _unused: int, generation: int) -> Repo | None:
        started = time.monotonic()
        row = await self._store.repo_by_id(repo_id)
        if generation == self._generation:
            if len(self._repos) > _MAX_CACHED:
                self._repos.clear()
            self._repos[repo_id] = _Cached(started, row)
        return row

    async def _fetch_perm(self, repo_id: int, user_id: int, generation: int) -> str | None:
        started = time.monotonic()
        perm = await self._store.permission_of(repo_id, user_id)
        if generation == self._generation:
            if len(self._perms) > _MAX_CACHED:
                self._perms.clear()
            self._perms.setdefault(repo_id, {})[user_id] = _Cached(started, perm)
        return perm


def same_repository(row: Repo, item: Outgoing) -> bool:
    """Is this row the repository the event was recorded for? (Not if it was renamed
    since, or if SQLite handed a deleted repository's id to a newer one.)"""
    return row.full_name.lower() == item.repo_key and row.created_at <= item.created_at


def decide(principal: Principal, item: Outgoing, row: Repo | None, perm: str | None) -> bool:
    """May `principal` read the repository of `item`, given its current row?"""
    if row is not None and same_repository(row, item):
        return Access.READ in effective_access(principal, row, perm)
    # The repository is gone (repository.deleted) or is no longer the one of the event:
    # only what the event recorded, and only as much as the repository's owner or a site
    # admin sees, or anyone if it was public then and (if it still exists) is public now.
    user = principal.user
    if user is not None and (user.is_admin or user.login.lower() == item.owner.lower()):
        return Access.READ in principal.scope_mask
    return item.private is False and (row is None or not row.private)
