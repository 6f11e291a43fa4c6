"""Typed application and request keys, in one place."""

from __future__ import annotations

from aiohttp import web

from app.auth.access import Principal
from app.services.context import AppContext
from app.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CTX = web.AppKey("ctx", AppContext)

PRINCIPAL = web.RequestKey("principal", Principal)
