"""What happens after each request: its access line and its request metrics.

The gateway appends one tuple per answered request (`record`, a fraction of a
microsecond); `drain` turns a batch into access lines and metric updates ten times a
second, before /metrics is scraped, and at shutdown. Done per request inline, formatting
and counting were a fifth of the middleware stack's cost on a trivial route
(bench/middleware_bench.py), most of it call overhead a batch does not pay.

The access lines stay in order and carry the time each request ended; they reach
standard error at most `DRAIN_INTERVAL` plus the log handler's own flush interval
(0.2 s) later, so another logger's line of those 0.3 s may come before them.
A process killed with SIGKILL loses the lines of its last ~0.3 s; SIGTERM loses none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator

from aiohttp import web

from app import logs
from app.web.metrics import METRICS, Metrics

DRAIN_INTERVAL = 0.1
UNROUTED = "unrouted"  # the catch-all resource's name (app.web.middlewares.install)
access_log = logging.getLogger("app.access")

# (ended, started, method, path, remote, route label, status, request id, user login);
# ended and started are time.perf_counter() readings (one clock call less per request:
# `drain` turns them into wall-clock time). Only strings and numbers, so that the
# garbage collector untracks a row at its first pass instead of walking it again in
# every older generation while it waits.
Row = tuple[float, float, str, str, "str | None", str, int, str, "str | None"]


class RequestLog:
    __slots__ = ("labels", "metrics", "rows")

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics
        self.rows: deque[Row] = deque()
        # route -> its template (routes live as long as the app; requests no route takes
        # all reach the one catch-all route, labelled "unmatched")
        self.labels: dict[web.AbstractRoute, str] = {}

    def drain(self) -> None:
        """Process every row recorded so far, oldest first."""
        rows = self.rows
        if not rows:
            return
        batch = [rows.popleft() for _ in range(len(rows))]
        metrics = self.metrics
        if metrics is not None:
            observe = metrics.http.observe
            for row in batch:
                observe(row[2], row[5], row[6], row[0] - row[1])
        if not access_log.isEnabledFor(logging.INFO):
            return
        to_wall = time.time() - time.perf_counter()
        name = access_log.name
        lines = [
            (end + to_wall, name, method, path, status, end - start, rid, user, remote)
            for end, start, method, path, remote, _, status, rid, user in batch
        ]
        if not logs.write_access_lines(access_log, lines):
            for line in lines:  # another handler (tests capturing logs): the usual path
                _log_line(*line)

    def label(self, route: web.AbstractRoute) -> str:
        """The route's template (bounded cardinality), never the raw path; cached."""
        resource = route.resource
        label = "unmatched" if resource is None or resource.name == UNROUTED else resource.canonical
        self.labels[route] = label
        return label


def _log_line(
    ended: float,
    name: str,
    method: str,
    path: str,
    status: int,
    elapsed: float,
    request_id: str,
    user: str | None,
    remote: str | None,
) -> None:
    fields: dict[str, object] = {
        "request_id": request_id,
        "user": user,
        "method": method,
        "path": path,  # never the query string: it may hold access_token
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
        "remote": remote,
    }
    access_log.info("%s %s %s %.1fms", method, path, status, elapsed * 1000, extra=fields)


REQUEST_LOG = web.AppKey("request_log", RequestLog)


def setup(app: web.Application) -> None:
    app[REQUEST_LOG] = RequestLog(app.get(METRICS))
    app.cleanup_ctx.append(_drain_periodically)


async def _drain_periodically(app: web.Application) -> AsyncIterator[None]:
    log = app[REQUEST_LOG]

    async def loop() -> None:
        while True:
            await asyncio.sleep(DRAIN_INTERVAL)
            log.drain()

    task = asyncio.create_task(loop(), name="request-log")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        log.drain()  # everything answered before the runner stopped
