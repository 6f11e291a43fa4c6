"""Operations endpoints: /healthz (alive), /readyz (ready to serve), /metrics (Prometheus).

/readyz checks the database (a query) and git (`git --version`, cached a few seconds so
a probe flood cannot turn into a process flood), and reports a failing Redis rate-limit
backend as "degraded" (200: requests are still served, limits fail open). While the
server drains it answers 503, so a load balancer stops sending new work.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.git.process import run_git
from app.web.guards import LIMITER_HEALTH, LIMITS
from app.web.keys import CTX, SETTINGS
from app.web.metrics import METRICS
from app.web.requestlog import REQUEST_LOG

GIT_CHECK_TTL = 5.0
CHECK_TIMEOUT = 3.0
DRAINING = web.AppKey("draining", asyncio.Event)
_GIT_CHECK = web.AppKey("git_check", dict)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check_database(app: web.Application) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await app[CTX].store.ping()
    except Exception as exc:
        return f"failing: {type(exc).__name__}"
    return "ok"


async def _check_git(app: web.Application) -> str:
    cache = app[_GIT_CHECK]
    now = time.monotonic()
    if now - cache.get("at", -1e9) < GIT_CHECK_TTL:
        return str(cache["result"])
    try:
        await run_git(app[CTX].git, ["--version"], timeout=CHECK_TIMEOUT)
        result = "ok"
    except Exception as exc:
        result = f"failing: {type(exc).__name__}"
    cache.update(at=now, result=result)
    return result


async def _check_rate_limits(app: web.Application) -> str:
    limits = app[LIMITS]
    ping = getattr(limits.limiter, "ping", None)
    if ping is not None:
        try:
            await ping()
        except Exception as exc:
            app[LIMITER_HEALTH].failed("readiness probe", exc)
    return "degraded" if app[LIMITER_HEALTH].degraded else "ok"


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    if app[DRAINING].is_set():
        return web.json_response({"status": "draining"}, status=503)
    database, git, limits = await asyncio.gather(
        _check_database(app), _check_git(app), _check_rate_limits(app)
    )
    checks = {"database": database, "git": git, "rate_limit": limits}
    if database != "ok" or git != "ok":
        return web.json_response({"status": "unavailable", "checks": checks}, status=503)
    status = "degraded" if limits != "ok" else "ok"
    return web.json_response({"status": status, "checks": checks})


async def metrics(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "").partition(" ")[2].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise web.HTTPUnauthorized(reason="metrics need the metrics token")
    request.app[REQUEST_LOG].drain()  # the requests answered since the last batch
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def _mark_draining(app: web.Application) -> None:
    app[DRAINING].set()


def add_routes(app: web.Application) -> None:
    app[DRAINING] = asyncio.Event()
    app[_GIT_CHECK] = {}
    app.on_shutdown.insert(0, _mark_draining)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
