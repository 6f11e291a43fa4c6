"""What every response carries: X-Request-ID, GitHub's X-RateLimit-* headers and, on a
cross-origin request, aiohttp-cors's Access-Control-* headers.

The gateway middleware stamps the responses handlers return. A handler that prepares
its own response (a stream, a WebSocket) calls `prepare(request, response)` instead of
`response.prepare(request)`, so its headers are stamped before they are sent
(tests/unit/test_layers.py checks that nothing else calls `.prepare(`).

There is deliberately no on_response_prepare receiver: with one, aiohttp awaits the
signal and a coroutine per receiver on every response. Measured on the trivial route of
bench/middleware_bench.py, that machinery alone cost ~7 us of ~75 us per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from app.ratelimit.base import HeaderPairs


class Exchange:
    """Per-request facts the stamping needs, shared by reference between a request and
    its clones (the gateway clones a request that came through a trusted proxy)."""

    __slots__ = ("rate_headers", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        # GitHub's X-RateLimit-* headers, once the request was counted (/api only)
        self.rate_headers: HeaderPairs | None = None


EXCHANGE = web.RequestKey("exchange", Exchange)
CorsHook = Callable[[web.Request, web.StreamResponse], Awaitable[object]]
# aiohttp-cors's response hook, taken off on_response_prepare by app.web.cors
CORS_HOOK: web.AppKey[CorsHook] = web.AppKey("cors_hook")


async def prepare(request: web.Request, response: web.StreamResponse) -> None:
    """`response.prepare(request)` with this server's headers stamped first."""
    exchange = request.get(EXCHANGE)
    if exchange is not None:
        stamp_response(response, exchange)
        cors = request.app.get(CORS_HOOK)
        if cors is not None and hdrs.ORIGIN in request.headers:
            await cors(request, response)
    await response.prepare(request)


def stamp_response(response: web.StreamResponse, exchange: Exchange) -> None:
    """X-Request-ID and the rate-limit headers onto a response not yet prepared."""
    headers = response.headers
    headers.add("X-Request-ID", exchange.request_id)  # nobody else sets it
    if exchange.rate_headers is not None:
        headers.extend(exchange.rate_headers)
