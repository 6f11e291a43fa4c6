"""The middleware stack: one aiohttp middleware (`gateway`) running these layers,
outermost first (fused: each separate aiohttp middleware costs a call and a coroutine
per request):

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
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

from aiohttp import hdrs, typedefs, web
from pydantic import ValidationError

from app import logs
from app.auth.access import ANONYMOUS, Principal
from app.errors import AppError, BadRequest, Invalid, PayloadTooLarge, RateLimited
from app.ratelimit import Decision, LoginGuard
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
_random_bits = random.getrandbits
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$")
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 (a path, not a secret)
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestTimeout(AppError):
    status = 408
    default_message = "request body not received in time"


def stack(settings: Settings) -> list[Middleware]:
    """The middlewares in order, for `web.Application(middlewares=...)`: one function
    (`gateway`) that runs the layers above in that order (each aiohttp middleware layer
    costs a call and a coroutine per request)."""
    return [gateway(settings)]


class _Bound:
    """The app's protection objects, looked up once per app (they are set after `stack`
    is called, by setup_guards)."""

    __slots__ = ("app", "guard", "limits", "metrics", "settings")

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.settings = app[SETTINGS]
        self.metrics = app.get(METRICS)
        self.limits = app.get(LIMITS)
        self.guard = app.get(LOGIN_GUARD)


def gateway(settings: Settings) -> Middleware:
    """proxy_headers -> request_log -> errors -> body_guard -> authenticate -> rate_limit,
    fused into one middleware (the module docstring describes each layer)."""
    networks = [ipaddress.ip_network(item, strict=False) for item in settings.trusted_proxies]
    bound: _Bound | None = None
    info_enabled = access_log.isEnabledFor

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal bound
        exchange = request[EXCHANGE] = Exchange()
        # proxy headers: the clone shares `exchange` with the request aiohttp prepares
        if networks and _trusted(request.remote, networks):
            request = _forwarded(request, networks)
        b = bound
        if b is None or b.app is not request.app:
            b = bound = _Bound(request.app)
        # request log
        exchange.request_id = request[REQUEST_ID] = request_id = _request_id(request)
        metrics = b.metrics
        if metrics is not None:
            metrics.in_flight_count += 1
        started = time.perf_counter()
        status = 500
        who: Principal | None = None  # only the gateway sets PRINCIPAL: no lookup at the end
        try:
            try:
                # body_guard -> authenticate -> rate_limit -> the handler (inline)
                method = request.method
                path = request.path
                if method in _BODY_METHODS and path.startswith("/api/"):
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
                        principal = (
                            ANONYMOUS
                            if header is None
                            else await principal_from_header(b.app[CTX], header)
                        )
                        request[PRINCIPAL] = who = principal
                        limits = b.limits  # rate limit: /api only (git has admission control)
                        if (
                            limits is not None
                            and path.startswith("/api/")
                            and method != hdrs.METH_OPTIONS
                        ):
                            user_id = principal.user.id if principal.user else None
                            now = limits.check_now(user_id=user_id, address=address)
                            # False: not answerable in process, ask the backend (Redis)
                            decision = (
                                await limits.check(user_id=user_id, address=address)
                                if now is False
                                else now
                            )
                            if decision is not None:  # None: the backend failed open
                                exchange.rate_headers = decision.headers()
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
            return response
        except web.HTTPException as exc:
            status = exc.status
            exc.headers["X-Request-ID"] = request_id
            raise
        finally:
            elapsed = time.perf_counter() - started
            user = who.user.login if who is not None and who.user else None
            if metrics is not None:
                metrics.in_flight_count -= 1
                metrics.http.observe(request.method, route_label(request), status, elapsed)
            if info_enabled(logging.INFO):
                _access_line(request, status, elapsed, request_id, user)

    return middleware


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


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-ID")
    if given and _REQUEST_ID_RE.match(given):
        return given
    # 128 random bits without a getrandom system call per request (ids are unique, not
    # secrets; the random module reseeds itself in forked children)
    return f"{_random_bits(128):032x}"


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
    headers = response.headers
    if exchange.request_id and "X-Request-ID" not in headers:
        headers["X-Request-ID"] = exchange.request_id
    for name, value in exchange.rate_headers.items():
        headers.setdefault(name, value)


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
