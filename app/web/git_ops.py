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


async def flushed(request: web.Request, seconds: float) -> None:
    """Wait until the response's bytes have left this process (reached the kernel).

    `write_eof()` returns once aiohttp's buffer is below its low-water mark, not empty.
    A draining server that stops its loop right then loses the rest (a slow reader's
    clone is cut a few KB short), so a git response is only done when the transport's
    buffer is empty, or after `seconds` without the client reading.
    """
    transport = request.transport
    deadline = asyncio.get_running_loop().time() + seconds
    # Polled: asyncio has no event for "write buffer empty" (only pause/resume at marks).
    while (  # noqa: ASYNC110
        transport is not None
        and not transport.is_closing()
        and transport.get_write_buffer_size() > 0
        and asyncio.get_running_loop().time() < deadline
    ):
        await asyncio.sleep(0.005)
