"""create_app(settings): wiring only. Resources live in cleanup_ctx, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from app.git.reader import ReaderPool
from app.services.bootstrap import open_context
from app.settings import Settings
from app.web import api, events_ws, middlewares, ops, requestlog, smart_http
from app.web.cors import setup_cors
from app.web.guards import setup_guards
from app.web.keys import CTX, SETTINGS

# Git bodies must reach Smart HTTP still compressed (it inflates them itself, in bounded
# pieces with a cap: app/git/smart.py): aiohttp would otherwise inflate them with no
# size cap (SECURITY-NOTES rule 14). Every runner of this app uses these.
# Header limits and the keep-alive timeout (which also bounds how long a client may take
# to send a request's headers: SECURITY.md) are the Settings defaults; runner_kwargs()
# takes them from a Settings object.
RUNNER_KWARGS: dict[str, Any] = {
    "auto_decompress": False,
    "keepalive_timeout": 30.0,
    "max_line_size": 8190,
    "max_field_size": 8190,
    "max_headers": 100,
}


def runner_kwargs(settings: Settings) -> dict[str, Any]:
    """RUNNER_KWARGS with the limits of these settings."""
    return {
        **RUNNER_KWARGS,
        "keepalive_timeout": settings.keepalive_timeout,
        "max_line_size": settings.max_header_line_bytes,
        "max_field_size": settings.max_header_field_bytes,
        "max_headers": settings.max_headers,
    }


async def _context(app: web.Application) -> AsyncIterator[None]:
    async with open_context(app[SETTINGS]) as ctx:
        app[CTX] = ctx
        yield


async def _readers(app: web.Application) -> AsyncIterator[None]:
    """The pooled `git cat-file` readers of the REST API (after the context, closed first)."""
    ctx, settings = app[CTX], app[SETTINGS]
    pool = ReaderPool(
        ctx.git,
        max_processes=settings.reader_pool_size,
        per_repo=settings.reader_per_repo,
        idle_seconds=settings.reader_idle_seconds,
        pooled=settings.git_reader_pool,
        cache_bytes=settings.reader_cache_mb * 1024 * 1024,
    )
    await pool.start()
    ctx.readers = pool
    try:
        yield
    finally:
        ctx.readers = None
        await pool.close()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.api_max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_context)
    app.cleanup_ctx.append(_readers)
    setup_guards(app, settings)
    requestlog.setup(app)  # after the guards: it counts into their metrics
    # Routes: the API first, Smart HTTP's catch-all under /{owner}/{repo} last.
    api.add_routes(app)
    events_ws.setup(app)  # WebSocket /api/v1/events, its access cache, 1001 on shutdown
    ops.add_routes(app)
    smart_http.add_routes(app)
    setup_cors(app, settings)  # it covers every /api route added above
    middlewares.install(app)  # at startup: the gateway in front of every route
    return app
