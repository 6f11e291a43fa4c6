"""What wraps each git process of Smart HTTP: admission (bounded concurrency with a short
queue, 503 + Retry-After past it), metrics (operations, bytes, duration), and idle
deadlines on the client side of the stream (a client that stops sending a push or
stops reading a clone is cut off after `git_idle_timeout` seconds of no progress)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from app.errors import Unavailable
from app.store.records import Repo
from app.web.guards import ADMISSION
from app.web.metrics import METRICS


@dataclass
class Operation:
    response: web.StreamResponse | None = None


@contextlib.asynccontextmanager
async def git_operation(request: web.Request, repo: Repo, service: str) -> AsyncIterator[Operation]:
    """Hold an admission slot for the life of one git process and record it."""
    app = request.app
    metrics = app.get(METRICS)
    admission = app.get(ADMISSION)
    op = Operation()
    try:
        if admission is None:
            slot: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
        else:
            slot = admission.slot(f"repo:{repo.id}", request.remote or "-")
        async with slot:
            started = time.perf_counter()
            result = "error"
            try:
                yield op
                result = "ok" if op.response is None or op.response.status < 400 else "refused"
            finally:
                if metrics is not None:
                    metrics.git_ops.labels(service, result).inc()
                    metrics.git_seconds.labels(service).observe(time.perf_counter() - started)
                    metrics.git_bytes.labels(service, "in").inc(request.content.total_bytes)
                    if op.response is not None and op.response.body_length:
                        metrics.git_bytes.labels(service, "out").inc(op.response.body_length)
    except Unavailable:
        if metrics is not None:
            metrics.git_refused.inc()
            metrics.git_ops.labels(service, "busy").inc()
        raise


async def read_within(content: aiohttp.StreamReader, size: int, seconds: float) -> bytes:
    """The next chunk of a request body, or ConnectionResetError if none comes in time."""
    try:
        async with asyncio.timeout(seconds):
            return await content.read(size)
    except TimeoutError:
        raise ConnectionResetError("client sent nothing for too long") from None


async def write_within(response: web.StreamResponse, chunk: bytes, seconds: float) -> None:
    """Write one chunk, or ConnectionResetError if the client does not read it in time."""
    try:
        async with asyncio.timeout(seconds):
            await response.write(chunk)
    except TimeoutError:
        raise ConnectionResetError("client read nothing for too long") from None
