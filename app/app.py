"""create_app(settings): wiring only. Resources live in cleanup_ctx, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from app.services.bootstrap import open_context
from app.settings import Settings
from app.web import api, middlewares, smart_http
from app.web.keys import CTX, SETTINGS

# Git bodies must reach http-backend still compressed: aiohttp would otherwise inflate
# them with no size cap (SECURITY-NOTES rule 14). Every runner of this app uses these.
RUNNER_KWARGS: dict[str, Any] = {"auto_decompress": False}


async def _context(app: web.Application) -> AsyncIterator[None]:
    async with open_context(app[SETTINGS]) as ctx:
        app[CTX] = ctx
        yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[middlewares.request_log, middlewares.errors, middlewares.authenticate],
        client_max_size=settings.api_max_body_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_context)
    # Routes: the API first, Smart HTTP's catch-all under /{owner}/{repo} last.
    api.add_routes(app)
    smart_http.add_routes(app)
    return app
