"""After a push: one event per updated ref, built from the hook's report."""

from __future__ import annotations

import asyncio
from typing import Any

from app.git.history_push import ZERO_SHA, is_ancestor, new_commits
from app.services.context import AppContext
from app.services.events import emit, repository_payload
from app.store.records import Event, Repo


async def record_push(
    ctx: AppContext, repo: Repo, actor: str | None, updates: list[tuple[str, str, str]]
) -> list[Event]:
    """Store and publish events for the refs git actually updated (post-receive's lines)."""
    if not updates:
        return []
    marked = asyncio.ensure_future(ctx.store.mark_pushed(repo.id))
    try:
        items: list[tuple[str, dict[str, Any]]] = []
        for old, new, ref in updates:
            items += await _events_for_update(ctx, repo, actor, old, new, ref)
    finally:
        await marked
    return await emit(ctx, repo, items, actor)


async def _events_for_update(
    ctx: AppContext, repo: Repo, actor: str | None, old: str, new: str, ref: str
) -> list[tuple[str, dict[str, Any]]]:
    created, deleted = old == ZERO_SHA, new == ZERO_SHA
    base = repository_payload(repo)
    if ref.startswith("refs/tags/"):
        kind = "tag.deleted" if deleted else "tag.created" if created else None
        if kind is None:
            return []  # a moved tag: no GitHub-style event for it
        return [(kind, {"ref": ref, "sha": old if deleted else new, **base})]
    if not ref.startswith("refs/heads/"):
        return []
    events: list[tuple[str, dict[str, Any]]] = [
        ("push", await _push_payload(ctx, repo, actor, old, new, ref))
    ]
    if created:
        events.append(("branch.created", {"ref": ref, "sha": new, **base}))
    if deleted:
        events.append(("branch.deleted", {"ref": ref, "sha": old, **base}))
    return events


async def _push_payload(
    ctx: AppContext, repo: Repo, actor: str | None, old: str, new: str, ref: str
) -> dict[str, Any]:
    path = ctx.storage.path(repo.owner, repo.name)
    created, deleted = old == ZERO_SHA, new == ZERO_SHA
    forced = False
    commits = []
    if not deleted:
        if created:
            commits = await new_commits(ctx.git, path, ref, old, new)
        else:  # two small git processes at once: this is on the push-to-event path
            ancestor, commits = await asyncio.gather(
                is_ancestor(ctx.git, path, old, new), new_commits(ctx.git, path, ref, old, new)
            )
            forced = not ancestor
    commit_dicts = [
        {
            "id": c.sha,
            "sha": c.sha,
            "message": c.message,
            "timestamp": c.timestamp,
            "author": {"name": c.author_name, "email": c.author_email},
        }
        for c in commits
    ]
    return {
        "ref": ref,
        "before": old,
        "after": new,
        "created": created,
        "deleted": deleted,
        "forced": forced,
        "commits": commit_dicts,
        "head_commit": commit_dicts[-1] if commit_dicts else None,
        "pusher": {"name": actor},
        **repository_payload(repo),
    }
