"""REST API under /api/v1 in GitHub's v3 shapes. Each resource module exposes `routes`
(a web.RouteTableDef); add_routes mounts them all."""

from __future__ import annotations

import importlib

from aiohttp import web

# Resource modules, mounted in this order. A module listed here must define `routes`.
RESOURCE_MODULES: tuple[str, ...] = (
    "auth",
    "users",
    "repos",
    "collaborators",
    "tokens",
    "admin",
    "branches",
    "commits",
    "contents",
    "trees",
    "events",
    "archives",
    "spec",
)


def add_routes(app: web.Application) -> None:
    for name in RESOURCE_MODULES:
        module = importlib.import_module(f"app.web.api.{name}")
        app.router.add_routes(module.routes)
