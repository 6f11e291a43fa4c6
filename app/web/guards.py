"""The per-app protection objects (rate limits, failed-login guard, git admission,
metrics) and where each lives: typed AppKeys, built by `setup_guards` in the app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from app.git.admission import Admission
from app.ratelimit import LoginGuard, RateLimits, make_limiter
from app.ratelimit.policy import BackendHealth
from app.settings import Settings, parse_rate
from app.web.metrics import METRICS, Metrics

LIMITS = web.AppKey("rate_limits", RateLimits)
LOGIN_GUARD = web.AppKey("login_guard", LoginGuard)
ADMISSION = web.AppKey("git_admission", Admission)
LIMITER_HEALTH = web.AppKey("limiter_health", BackendHealth)


def setup_guards(app: web.Application, settings: Settings) -> None:
    metrics = app[METRICS] = Metrics()
    health = app[LIMITER_HEALTH] = BackendHealth(on_error=metrics.rate_backend_errors.inc)
    limiter = make_limiter(settings)
    app[LIMITS] = RateLimits(settings, limiter, health)
    limit, period = parse_rate(settings.auth_failure_limit)
    app[LOGIN_GUARD] = LoginGuard(limit, period, limiter, health)
    admission = app[ADMISSION] = Admission(
        max_total=settings.git_max_concurrency,
        max_per_repo=settings.git_max_per_repo,
        max_per_client=settings.git_max_per_client,
        queue_size=settings.git_queue_size,
        queue_timeout=settings.git_queue_timeout,
    )
    metrics.git_active.set_function(lambda: admission.active)
    metrics.git_queued.set_function(lambda: admission.queued)

    async def close_limiter(app: web.Application) -> AsyncIterator[None]:
        yield
        await limiter.close()

    async def stop_admitting(app: web.Application) -> None:
        admission.close()  # draining: what runs finishes, nothing new starts

    app.cleanup_ctx.append(close_limiter)
    app.on_shutdown.append(stop_admitting)
