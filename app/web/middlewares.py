"""The middleware stack. Order (outermost first): request log -> errors -> authenticate.

Each is a small factory so the app factory can wire them with settings.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from app.errors import AppError, BadRequest, Invalid
from app.services.identity import principal_from_header
from app.web.keys import CTX, PRINCIPAL, REQUEST_ID
from app.web.responses import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
access_log = logging.getLogger("app.access")
log = logging.getLogger(__name__)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign the request id, time the request, and write one access-log line."""
    request[REQUEST_ID] = request_id = _request_id(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-ID"] = request_id
        raise
    finally:
        principal = request.get(PRINCIPAL)
        user = principal.user.login if principal and principal.user else None
        access_log.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,  # never the query string: it may hold access_token
            status,
            (time.perf_counter() - started) * 1000,
            extra={
                "request_id": request_id,
                "user": user,
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "remote": request.remote,
            },
        )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """AppError, validation errors and aiohttp's HTTP errors -> one error shape."""
    try:
        return await handler(request)
    except AppError as exc:
        return error_response(request, exc)
    except ValidationError as exc:
        return error_response(request, validation_error(exc))
    except json.JSONDecodeError:
        return error_response(request, BadRequest("Problems parsing JSON"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = error_response(request, AppError("Internal Server Error"))
        return response


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    error = AppError(exc.reason)
    error.status = exc.status
    response = error_response(request, error)
    for name in ("Allow", "Retry-After"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


def validation_error(exc: ValidationError) -> Invalid:
    """pydantic's errors -> GitHub's 422 body: one entry per field."""
    entries = []
    for item in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item.get("loc", ())) or "body"
        entries.append(
            {"resource": exc.title, "field": field, "code": "invalid", "message": item["msg"]}
        )
    return Invalid("Validation Failed", errors=entries)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Identify the caller from the Authorization header; never decides access."""
    ctx = request.app[CTX]
    request[PRINCIPAL] = await principal_from_header(ctx, request.headers.get("Authorization"))
    return await handler(request)
