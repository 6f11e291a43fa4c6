"""Opening and closing everything a process needs, for the server and the CLI alike."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from app.events.hub import EventHub, MemoryHub
from app.git.hooks import install_hooks
from app.git.process import GitConfig
from app.git.repos import RepoStorage
from app.services.context import AppContext
from app.settings import Settings
from app.store import Store


def git_config(settings: Settings) -> GitConfig:
    data = settings.data_dir.resolve()
    return GitConfig(
        git_bin=settings.git_bin,
        home=data / "git-home",
        hooks_path=data / "hooks",
        max_push_bytes=settings.git_max_push_bytes,
    )


def make_hub(settings: Settings) -> EventHub:
    if settings.redis_url:
        from app.events.redis_hub import RedisHub

        return RedisHub(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryHub()


def prepare_data_dir(settings: Settings) -> GitConfig:
    """Create the data dir layout and the server-owned hooks (idempotent)."""
    git = git_config(settings)
    for folder in (settings.repositories_dir, git.home, settings.data_dir / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    install_hooks(git.hooks_path)
    return git


@contextlib.asynccontextmanager
async def open_context(settings: Settings, *, migrate: bool = True) -> AsyncIterator[AppContext]:
    git = prepare_data_dir(settings)
    store = await Store.open(
        settings.resolved_database_url, migrate=migrate, lookup_ttl=settings.repo_cache_seconds
    )
    hub = make_hub(settings)
    # Another instance changed who may read what (or renamed/deleted a repository).
    hub.on_notice(lambda _notice: store.lookups.clear())
    try:
        await hub.start()
        storage = RepoStorage(
            settings.repositories_dir.resolve(), (settings.data_dir / "trash").resolve(), git
        )
        yield AppContext(
            settings=settings,
            store=store,
            storage=storage,
            git=git,
            hub=hub,
            secret_key=settings.load_secret_key(),
        )
    finally:
        await hub.close()
        await store.close()
