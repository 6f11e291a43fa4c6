"""CORS for the API and the events endpoint (aiohttp-cors).

No origin is allowed until APP_CORS_ORIGINS names some. Named origins get credentials;
a wildcard `*` never does (SECURITY-NOTES rule 20: never echo an arbitrary Origin with
credentials). Preflights are answered on every /api route; rate-limit, request-id,
Link and Retry-After headers are exposed to scripts.
"""

from __future__ import annotations

import logging

import aiohttp_cors
from aiohttp import hdrs, web

from app.settings import Settings
from app.web.stamping import CORS_HOOK

log = logging.getLogger(__name__)

EXPOSE_HEADERS = (
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Used",
    "X-RateLimit-Resource",
    "Retry-After",
    "Link",
    "ETag",
    "Location",
)
ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "If-None-Match",
    "X-Request-ID",
    "X-GitHub-Api-Version",
)
CORS_PREFIXES = ("/api/",)


def options_for(settings: Settings) -> dict[str, aiohttp_cors.ResourceOptions]:
    """One entry per allowed origin; credentials only for origins named explicitly."""
    options = {}
    for origin in settings.cors_origins:
        options[origin] = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
            allow_credentials=origin != "*",
            expose_headers=EXPOSE_HEADERS,
            allow_headers=ALLOW_HEADERS,
            allow_methods=("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"),
            max_age=600,
        )
    return options


def setup_cors(app: web.Application, settings: Settings) -> int:
    """Enable CORS on every /api resource already routed; returns how many.

    Call it once, after all routes are added (the app factory does, last).
    """
    cors = aiohttp_cors.setup(app, defaults=options_for(settings))
    _take_response_hook(app)
    count = 0
    for resource in list(app.router.resources()):
        if not resource.canonical.startswith(CORS_PREFIXES):
            continue
        methods = {route.method for route in resource}
        if hdrs.METH_OPTIONS in methods or hdrs.METH_ANY in methods:
            continue  # a handler of its own answers OPTIONS
        try:
            cors.add(resource)
            count += 1
        except (ValueError, RuntimeError) as exc:  # aiohttp-cors refuses some route kinds
            log.warning("CORS not enabled on %s: %s", resource.canonical, exc)
    return count


def _take_response_hook(app: web.Application) -> None:
    """Move aiohttp-cors's on_response_prepare receiver to CORS_HOOK: the gateway and
    `stamping.prepare` call it, and only for a request with an Origin header (without
    one it does nothing, CORS 6.1.1, after resolving the route's config). Leaving it on
    the signal would cost every response a signal dispatch (app/web/stamping.py)."""
    signal = app.on_response_prepare
    for receiver in list(signal):
        owner = getattr(receiver, "__self__", None)  # the bound method of aiohttp-cors's config
        if owner is not None and type(owner).__module__.startswith("aiohttp_cors."):
            signal.remove(receiver)
            app[CORS_HOOK] = receiver
