"""Recording events: stored first (the database gives the id), then published."""

from __future__ import annotations

import json
import logging
from typing import Any

from app.services.context import AppContext
from app.store.records import Event, Repo

log = logging.getLogger(__name__)


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
    stored = await ctx.store.add_events(rows)
    try:
        await ctx.hub.publish(stored)
    except Exception:
        # Stored events are not lost: subscribers replay them with since_id.
        log.exception("publishing %d events failed", len(stored))
    return stored


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
