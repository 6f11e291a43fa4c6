"""The middleware stack, outermost first:

    proxy_headers -> request_log -> errors -> body_guard -> authenticate -> rate_limit

- proxy_headers: X-Forwarded-For/-Proto/-Host, only from APP_TRUSTED_PROXIES (it
  clones the request, so it runs first and everything after sees the client's address).
- request_log: request id, one access-log line, request metrics.
- errors: AppError, validation errors and aiohttp's HTTP errors -> one JSON shape.
- body_guard: /api bodies: 413 on a declared oversize, a deadline for slow senders.
- authenticate: who is it? Guarded by the failed-login limiter (refusals come before
  any password is checked).
- rate_limit: /api only, per user or per address, GitHub's X-RateLimit-* headers.

`stamp_headers` (on_response_prepare) puts X-Request-ID and the rate-limit headers on
every response, also those prepared by aiohttp itself or streamed by a handler.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import hdrs, typedefs, web
from pydantic import ValidationError

from app import logs
from app.auth.access import ANONYMOUS
from app.errors import AppError, BadRequest, Invalid, PayloadTooLarge, RateLimited
from app.services.identity import BadCredentials, principal_from_header
from app.settings import Settings
from app.web.guards import EXCHANGE, LIMITS, LOGIN_GUARD, Exchange
from app.web.keys import CTX, PRINCIPAL, REQUEST_ID, SETTINGS
from app.web.metrics import METRICS, route_label
from app.web.responses import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = typedefs.Middleware
access_log = logging.getLogger("app.access")
log = logging.getLogger(__name__)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$")
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 (a path, not a secret)
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestTimeout(AppError):
    status = 408
    default_message = "request body not received in time"


def stack(settings: Settings) -> list[Middleware]:
    """The middlewares in order, for `web.Application(middlewares=...)`."""
    return [
        proxy_headers(settings.trusted_proxies),
        request_log,
        errors,
        body_guard,
        authenticate,
        rate_limit,
    ]


# --- proxy headers ------------------------------------------------------------------


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[v6]:port"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "v4:port"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: str | None, networks: Sequence[Network]) -> bool:
    ip = _parse_ip(address or "")
    return ip is not None and any(ip in net for net in networks)


def forwarded_client(values: Sequence[str], networks: Sequence[Network]) -> str | None:
    """The client in X-Forwarded-For: the rightmost hop that is not a trusted proxy
    (entries further left were written by the client and prove nothing)."""
    hops = [hop for value in values for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        ip = _parse_ip(hop)
        if ip is None:
            return None
        if not any(ip in net for net in networks):
            return str(ip)
    first = _parse_ip(hops[0]) if hops else None
    return str(first) if first else None


def proxy_headers(trusted: Sequence[str]) -> Middleware:
    networks = [ipaddress.ip_network(item, strict=False) for item in trusted]

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[EXCHANGE] = Exchange()
        if not networks or not _trusted(request.remote, networks):
            return await handler(request)
        changes: dict[str, str] = {}
        client = forwarded_client(request.headers.getall("X-Forwarded-For", []), networks)
        if client:
            changes["remote"] = client
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
        if proto in ("http", "https"):
            changes["scheme"] = proto
        host = request.headers.get("X-Forwarded-Host", "").split(",")[-1].strip()
        if host and _HOST_RE.match(host):
            changes["host"] = host
        return await handler(request.clone(**changes) if changes else request)  # type: ignore[arg-type]

    return middleware


# --- request log --------------------------------------------------------------------


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-ID")
    return given if given and _REQUEST_ID_RE.match(given) else os.urandom(16).hex()


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign the request id, time the request, write one access-log line, count it."""
    request[REQUEST_ID] = request_id = _request_id(request)
    exchange = request.get(EXCHANGE)
    if exchange is None:
        exchange = request[EXCHANGE] = Exchange()
    exchange.request_id = request_id
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.in_flight_count += 1
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
        elapsed = time.perf_counter() - started
        principal = request.get(PRINCIPAL)
        user = principal.user.login if principal and principal.user else None
        if metrics is not None:
            metrics.in_flight_count -= 1
            metrics.observe_request(request.method, route_label(request), status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            _access_line(request, status, elapsed, request_id, user)


def _access_line(
    request: web.Request, status: int, elapsed: float, request_id: str, user: str | None
) -> None:
    """One access line (logs.access_line writes it directly when it can)."""
    path = request.path  # never the query string: it may hold access_token
    method, remote = request.method, request.remote
    if logs.request_line(access_log, method, path, status, elapsed, request_id, user, remote):
        return
    message = f"{request.method} {path} {status} {elapsed * 1000:.1f}ms"
    fields: dict[str, object] = {
        "request_id": request_id,
        "user": user,
        "method": request.method,
        "path": path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
        "remote": request.remote,
    }
    access_log.info("%s", message, extra=fields)


async def stamp_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare: X-Request-ID and X-RateLimit-* on every response."""
    exchange = request.get(EXCHANGE)
    if exchange is None:
        return
    if exchange.request_id and "X-Request-ID" not in response.headers:
        response.headers["X-Request-ID"] = exchange.request_id
    for name, value in exchange.rate_headers.items():
        response.headers.setdefault(name, value)


# --- errors -------------------------------------------------------------------------


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
    except ConnectionError:
        raise  # the client went away: nobody to answer, nothing to log as an error
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = error_response(request, AppError("Internal Server Error"))
        return response


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    error: AppError
    if exc.status == 413:
        limit = request.app[SETTINGS].api_max_body_bytes
        error = PayloadTooLarge(f"Request body is too large (limit {limit} bytes)")
    else:
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


# --- request bodies -----------------------------------------------------------------


@web.middleware
async def body_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API bodies are small (client_max_size): refuse a declared oversize at once (413),
    and read the body under a deadline, so a client that trickles it cannot hold a
    handler (408). Git bodies stream and have their own idle timeout."""
    if request.method in _BODY_METHODS and request.path.startswith("/api/"):
        settings = request.app[SETTINGS]
        length = request.content_length
        if length is not None and length > settings.api_max_body_bytes:
            raise PayloadTooLarge(
                f"Request body is too large (limit {settings.api_max_body_bytes} bytes)"
            )
        if request.body_exists:
            try:
                async with asyncio.timeout(settings.body_read_timeout):
                    await request.read()  # cached: the handler's read() gets these bytes
            except TimeoutError:
                raise RequestTimeout() from None
    return await handler(request)


# --- authentication -----------------------------------------------------------------


def _attempted_login(request: web.Request, header: str | None) -> str | None:
    """The account a credential names, if any (Basic user, or the token endpoint's body)."""
    if header and header[:6].lower() == "basic ":
        import base64
        import binascii

        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        login, sep, _ = decoded.partition(":")
        return login[:100] if sep and login else None
    return None


async def _token_endpoint_login(request: web.Request) -> str | None:
    if request.method != "POST" or request.path.rstrip("/") != TOKEN_PATH:
        return None
    try:
        data = json.loads(await request.read())
    except (ValueError, RecursionError):
        return None
    login = data.get("username") if isinstance(data, dict) else None
    return login[:100] if isinstance(login, str) and login else None


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Identify the caller from the Authorization header; never decides access.

    A request that carries credentials (a header, `?access_token=`, or the token
    endpoint's body) first passes the failed-login limiter; wrong credentials, here or
    raised later by a handler, are counted against the address and the account. A
    request without credentials (git's first, anonymous request) is never counted.
    """
    if request.path in OPS_PATHS:  # probes and scrapers: no user (/metrics has its own token)
        request[PRINCIPAL] = ANONYMOUS
        return await handler(request)
    ctx = request.app[CTX]
    header = request.headers.get("Authorization")
    guard = request.app.get(LOGIN_GUARD)
    address = request.remote or "-"
    login = _attempted_login(request, header)
    if guard is not None:
        body_login = await _token_endpoint_login(request) if request.method == "POST" else None
        login = login or body_login
        if (
            header is not None
            or body_login
            or (request.query_string and "access_token" in request.query)
        ):
            wait = await guard.retry_after(address, login)
            if wait is not None:
                request.app[METRICS].rate_refused.labels("login").inc()
                raise RateLimited(
                    "API rate limit exceeded: too many failed login attempts; try again later",
                    retry_after=wait,
                )
    try:
        request[PRINCIPAL] = (
            ANONYMOUS if header is None else await principal_from_header(ctx, header)
        )
        return await handler(request)
    except BadCredentials as exc:
        if guard is not None:
            await guard.failed(address, exc.login or login)
        raise


# --- rate limit ---------------------------------------------------------------------


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """/api only (git is bounded by admission control): per user, else per address."""
    if not request.path.startswith("/api/") or request.method == hdrs.METH_OPTIONS:
        return await handler(request)
    limits = request.app.get(LIMITS)
    if limits is None:
        return await handler(request)
    principal = request.get(PRINCIPAL)
    user_id = principal.user.id if principal is not None and principal.user else None
    address = request.remote or "-"
    now = limits.check_now(user_id=user_id, address=address)
    # False: not answerable in process, ask the backend (Redis); None: it failed open.
    decision = await limits.check(user_id=user_id, address=address) if now is False else now
    if decision is not None:
        request[EXCHANGE].rate_headers = decision.headers()
        if not decision.allowed:
            request.app[METRICS].rate_refused.labels("api").inc()
            who = f"user ID {user_id}" if user_id is not None else address
            raise RateLimited(
                f"API rate limit exceeded for {who}.",
                retry_after=decision.retry_after(time.time()),
            )
    return await handler(request)
