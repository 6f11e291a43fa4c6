"""Error bodies in one place: JSON on the API, plain text on git paths."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.errors import AppError, RateLimited, Unauthorized, Unavailable
from app.web.stamping import EXCHANGE

REALM = 'Basic realm="githost", charset="UTF-8"'


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def error_response(request: web.Request, error: AppError) -> web.Response:
    headers: dict[str, str] = {}
    if isinstance(error, (RateLimited, Unavailable)):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthorized) and not is_api(request):
        headers["WWW-Authenticate"] = REALM
    exchange = request.get(EXCHANGE)
    request_id = exchange.request_id if exchange is not None else ""
    if not is_api(request):
        return web.Response(
            status=error.status,
            text=error.message + "\n",
            headers=headers,
            content_type="text/plain",
        )
    body: dict[str, Any] = {"message": error.message}
    if error.errors:
        body["errors"] = error.errors
    body["documentation_url"] = "https://docs.github.com/rest"
    body["request_id"] = request_id
    return web.json_response(body, status=error.status, headers=headers)
