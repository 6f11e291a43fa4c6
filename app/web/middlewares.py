"""The middleware stack: one gateway in front of every route, running these layers
outermost first:

    proxy_headers -> request_log -> errors -> body_guard -> authenticate -> rate_limit

- proxy_headers: X-Forwarded-For/-Proto/-Host, only from APP_TRUSTED_PROXIES (it
  clones the request, so it runs first and everything after sees the client's address).
- request_log: request id, one access-log line and request metrics (app.web.requestlog).
- errors: AppError, validation errors and aiohttp's HTTP errors -> one JSON shape.
- body_guard: /api bodies: 413 on a declared oversize, a deadline for slow senders.
- authenticate: who is it? Guarded by the failed-login limiter (refusals come before
  any password is checked).
- rate_limit: /api only, per user or per address, GitHub's X-RateLimit-* headers.

The gateway also stamps X-Request-ID, the rate-limit headers and (with an Origin) the
CORS headers on the response (app/web/stamping.py; streaming handlers stamp their own).

Why not aiohttp middlewares: with any middleware, aiohttp runs every request through a
chain of partials and an extra coroutine of its own (`_fix_request_current_app`). On the
trivial route of bench/middleware_bench.py that machinery was ~7% of the stack's
throughput. So `install` wraps each route's handler instead, when the app starts (routes
that tests add after create_app included), and sends what no route takes to `unrouted`,
which answers 404 or 405 in the error shape through the same gateway. The layers, their
order and what a client sees are those of a middleware stack.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from time import perf_counter
from typing import Any, NoReturn

from aiohttp import hdrs, web
from pydantic import ValidationError

from app.auth.access import ANONYMOUS, Principal
from app.errors import AppError, BadRequest, Invalid, PayloadTooLarge, RateLimited
from app.ratelimit import Decision, LoginGuard
from app.services.identity import BadCredentials, principal_from_header
from app.settings import Settings
from app.web.guards import LIMITS, LOGIN_GUARD
from app.web.keys import CTX, PRINCIPAL, SETTINGS
from app.web.metrics import METRICS
from app.web.requestlog import REQUEST_LOG, UNROUTED
from app.web.responses import error_response
from app.web.stamping import CORS_HOOK, EXCHANGE, Exchange, stamp_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Guarded = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]
log = logging.getLogger(__name__)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$")
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 (a path, not a secret)
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_ORIGIN = str(hdrs.ORIGIN)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestTimeout(AppError):
    status = 408
    default_message = "request body not received in time"


def install(app: web.Application) -> None:
    """Put the gateway in front of every route of `app` when it starts."""
    app.on_startup.append(_guard_routes)


async def _guard_routes(app: web.Application) -> None:
    """on_startup (the router is frozen right after): wrap every handler, once."""
    guard = gateway(app[SETTINGS])
    app.router.add_route("*", "/{path:.*}", unrouted, name=UNROUTED)
    for route in app.router.routes():
        if not hasattr(route, "_handler"):  # aiohttp keeps a route's handler there
            raise RuntimeError(f"cannot guard route {route!r}: unknown aiohttp route type")
        route._handler = guard(route.handler)


async def unrouted(request: web.Request) -> web.StreamResponse:
    """What no route takes: 405 with Allow when a route has the path for other methods,
    else 404 (what aiohttp's router answers, here in the error shape)."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name != UNROUTED:
            _, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


class _Bound:
    """The app's protection objects, looked up once per app at its first request (they
    are set by setup_guards, requestlog.setup and setup_cors)."""

    __slots__ = ("app", "cors", "guard", "limits", "log", "metrics", "settings")

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.settings = app[SETTINGS]
        self.metrics = app.get(METRICS)
        self.limits = app.get(LIMITS)
        self.guard = app.get(LOGIN_GUARD)
        self.cors = app.get(CORS_HOOK)
        self.log = app.get(REQUEST_LOG)


def gateway(settings: Settings) -> Callable[[Handler], Guarded]:
    """proxy_headers -> request_log -> errors -> body_guard -> authenticate -> rate_limit,
    fused into one function put in front of each route (the module docstring says why
    and describes each layer).

    This runs on every request, so it is written for speed: locals over attributes,
    no call that a line can replace, the per-request records processed in batches
    (app.web.requestlog). bench/middleware_bench.py measures it against a bare app."""
    networks = [ipaddress.ip_network(item, strict=False) for item in settings.trusted_proxies]
    bound: _Bound | None = None  # this closure belongs to one app (_guard_routes)
    id_prefix = secrets.token_hex(8) + "-"  # at startup: a forked worker builds its own app
    id_counter = itertools.count(1)

    def guard(handler: Handler) -> Guarded:
        # a partial, not a wrapper coroutine: one coroutine per request, gate's own
        # (update_wrapper keeps the handler's @doc for the OpenAPI document)
        guarded = functools.partial(gate, handler=handler)
        functools.update_wrapper(guarded, handler)
        return guarded

    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal bound
        b = bound
        if b is None:
            b = bound = _Bound(request.app)
        # request log: the id first, so that every answer below carries it
        given = request.headers.get("X-Request-ID")
        request_id = (
            given
            if given is not None and _REQUEST_ID_RE.match(given)
            # this process's random prefix and a counter: unique, not secret (formatting
            # 128 random bits per request cost twice as much)
            else id_prefix + str(next(id_counter))
        )
        exchange = request[EXCHANGE] = Exchange(request_id)
        # proxy headers: the clone shares `exchange` with the request aiohttp prepares
        if networks and _trusted(request.remote, networks):
            request = _forwarded(request, networks)
        metrics = b.metrics
        if metrics is not None:
            metrics.in_flight_count += 1
        started = perf_counter()
        status = 500
        who: Principal | None = None  # only the gateway sets PRINCIPAL: no lookup at the end
        method = request.method
        path = request.path
        try:
            try:
                # body_guard -> authenticate -> rate_limit -> the handler (inline)
                if method in _BODY_METHODS and path[:5] == "/api/":
                    await _read_body(request, b.settings)
                if path in OPS_PATHS:  # probes, scrapers: no user (/metrics has its own token)
                    request[PRINCIPAL] = who = ANONYMOUS
                    response = await handler(request)
                else:
                    header = request.headers.get("Authorization")
                    guard = b.guard
                    address = request.remote or "-"
                    login = None
                    if guard is not None and (
                        header is not None
                        or method == "POST"
                        or (request.query_string and "access_token" in request.query)
                    ):
                        login = await _login_guard(request, guard, header, address, b)
                    try:
                        who = (
                            ANONYMOUS
                            if header is None
                            else await principal_from_header(b.app[CTX], header)
                        )
                        request[PRINCIPAL] = who
                        limits = b.limits  # rate limit: /api only (git has admission control)
                        if limits is not None and path[:5] == "/api/" and method != "OPTIONS":
                            user = who.user
                            user_id = None if user is None else user.id
                            now = limits.check_now(user_id, address)
                            # False: not answerable in process, ask the backend (Redis)
                            decision = (
                                now
                                if now is not False
                                else await limits.check(user_id=user_id, address=address)
                            )
                            if decision is not None:  # None: the backend failed open
                                exchange.rate_headers = decision.header_pairs()
                                if not decision.allowed:
                                    _refuse(b, decision, user_id, address)
                        response = await handler(request)
                    except BadCredentials as exc:
                        if guard is not None:
                            await guard.failed(address, exc.login or login)
                        raise
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = _from_http_exception(request, exc)
            except AppError as exc:
                response = error_response(request, exc)
            except ConnectionError:
                raise  # the client went away: nobody to answer, nothing to log as an error
            except Exception as exc:
                response = _error(request, exc)
            status = response.status
            if not response.prepared:  # else the handler stamped it (stamping.prepare)
                headers = response.headers
                # stamping.stamp_response, inlined: this is every request's path
                headers.add("X-Request-ID", request_id)  # nobody else sets it
                if exchange.rate_headers is not None:
                    headers.extend(exchange.rate_headers)
                if b.cors is not None and _ORIGIN in request.headers:
                    await b.cors(request, response)
            return response
        except web.HTTPException as exc:  # a redirect raised by aiohttp or a handler
            status = exc.status
            stamp_response(exc, exchange)
            if b.cors is not None and _ORIGIN in request.headers:
                await b.cors(request, exc)
            raise
        finally:
            if metrics is not None:
                metrics.in_flight_count -= 1
            log = b.log
            if log is not None:  # the access line and request metrics, in batches
                route = request.match_info.route
                user = who.user if who is not None else None
                # only strings and numbers: the garbage collector stops tracking the row
                log.rows.append(
                    (
                        perf_counter(),
                        started,
                        method,
                        path,
                        request.remote,
                        log.labels.get(route) or log.label(route),
                        status,
                        request_id,
                        None if user is None else user.login,
                    )
                )

    return guard


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


def _forwarded(request: web.Request, networks: Sequence[Network]) -> web.Request:
    """The request as the trusted proxy saw it: X-Forwarded-For/-Proto/-Host applied."""
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
    return request.clone(**changes) if changes else request  # type: ignore[arg-type]


# --- request log --------------------------------------------------------------------


# --- errors -------------------------------------------------------------------------


def _error(request: web.Request, exc: Exception) -> web.StreamResponse:
    """Validation errors, bad JSON and anything unexpected -> the error shape (the
    gateway handles AppError and aiohttp's HTTP errors itself)."""
    if isinstance(exc, ValidationError):
        return error_response(request, validation_error(exc))
    if isinstance(exc, json.JSONDecodeError):
        return error_response(request, BadRequest("Problems parsing JSON"))
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(request, AppError("Internal Server Error"))


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


async def _read_body(request: web.Request, settings: Settings) -> None:
    """API bodies are small (client_max_size): refuse a declared oversize at once (413),
    and read the body under a deadline, so a client that trickles it cannot hold a
    handler (408). Git bodies stream and have their own idle timeout."""
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


async def _login_guard(
    request: web.Request, guard: LoginGuard, header: str | None, address: str, b: _Bound
) -> str | None:
    """The failed-login limiter, for a request that may carry credentials (a header,
    `?access_token=`, or the token endpoint's body): refusals come before any password
    is checked. Returns the account the credential names, if any. A request without
    credentials (git's first, anonymous request) is never counted."""
    login = _attempted_login(request, header)
    body_login = await _token_endpoint_login(request) if request.method == "POST" else None
    login = login or body_login
    if (
        header is not None
        or body_login
        or (request.query_string and "access_token" in request.query)
    ):
        wait = await guard.retry_after(address, login)
        if wait is not None:
            if b.metrics is not None:
                b.metrics.rate_refused.labels("login").inc()
            raise RateLimited(
                "API rate limit exceeded: too many failed login attempts; try again later",
                retry_after=wait,
            )
    return login


# --- rate limit ---------------------------------------------------------------------


def _refuse(b: _Bound, decision: Decision, user_id: int | None, address: str) -> NoReturn:
    if b.metrics is not None:
        b.metrics.rate_refused.labels("api").inc()
    who = f"user ID {user_id}" if user_id is not None else address
    raise RateLimited(
        f"API rate limit exceeded for {who}.", retry_after=decision.retry_after(time.time())
    )
