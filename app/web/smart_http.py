"""Smart HTTP (CONTRACT §3): info/refs and the two services, streamed through
`git http-backend`. Request flow: resolve -> authorize -> run.

Only `info/refs?service=` and the two POST services reach git; anything else under a
repository path is 404, so no file of the repository directory is ever served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from pathlib import Path

from aiohttp import web

from app.auth.access import Access
from app.errors import AppError, BadRequest, NotFound
from app.git.hooks import PUSH_REPORT_ENV, parse_push_report
from app.git.process import open_git
from app.services.context import AppContext
from app.services.pushes import record_push
from app.services.repos import resolve
from app.store.records import Repo
from app.web.cgi import SERVICES, CgiHeaderError, backend_env, parse_headers, split_header_block
from app.web.keys import CTX, PRINCIPAL

log = logging.getLogger(__name__)
CHUNK = 256 * 1024


class UnsupportedMediaType(AppError):
    status = 415
    default_message = "unsupported content type"


def _need(service: str) -> Access:
    return Access.WRITE if service == "git-receive-pack" else Access.READ


async def _authorize(request: web.Request, service: str) -> Repo:
    ctx = request.app[CTX]
    repo, _ = await resolve(
        ctx,
        request[PRINCIPAL],
        request.match_info["owner"],
        request.match_info["repo"],
        _need(service),
    )
    return repo


async def info_refs(request: web.Request) -> web.StreamResponse:
    service = request.query.get("service", "")
    if service not in SERVICES:
        raise NotFound("dumb HTTP is not served; use a git client >= 1.6.6")
    repo = await _authorize(request, service)
    return await _run(request, repo, service, "GET", "info/refs")


async def service_rpc(request: web.Request) -> web.StreamResponse:
    service = request.match_info["service"]
    if service not in SERVICES:
        raise NotFound()
    repo = await _authorize(request, service)
    if request.content_type != f"application/x-{service}-request":
        raise UnsupportedMediaType(f"expected application/x-{service}-request")
    return await _run(request, repo, service, "POST", service)


async def not_served(request: web.Request) -> web.StreamResponse:
    raise NotFound()


def _gzip_body(request: web.Request) -> bool:
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return False
    if encoding in ("gzip", "x-gzip"):
        return True
    raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding[:40]!r}")


async def _run(
    request: web.Request, repo: Repo, service: str, method: str, tail: str
) -> web.StreamResponse:
    ctx = request.app[CTX]
    principal = request[PRINCIPAL]
    report = _report_path(ctx) if service == "git-receive-pack" and method == "POST" else None
    env = backend_env(
        project_root=str(ctx.settings.repositories_dir.resolve()),
        path_info=f"/{repo.owner}/{repo.name}.git/{tail}",
        method=method,
        service=service,
        remote_user=principal.user.login if principal.user else None,
        remote_addr=request.remote or "",
        content_type=request.headers.get("Content-Type") if method == "POST" else None,
        git_protocol=request.headers.get("Git-Protocol"),
        gzip_body=method == "POST" and _gzip_body(request),
    )
    if report is not None:
        env[PUSH_REPORT_ENV] = str(report)
    try:
        async with open_git(ctx.git, ["http-backend"], env=env, stdin=True) as proc:
            return await _bridge(request, proc, with_body=method == "POST")
    finally:
        if report is not None:
            await asyncio.shield(_after_push(ctx, repo, principal.user, report))


async def _bridge(
    request: web.Request, proc: asyncio.subprocess.Process, *, with_body: bool
) -> web.StreamResponse:
    """Pump the body in, the response out and stderr to the log, all at once
    (http-backend deadlocks when both directions outgrow the pipe buffers)."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    pump = asyncio.ensure_future(
        _pump_body(request, proc.stdin) if with_body else _close(proc.stdin)
    )
    drain = asyncio.ensure_future(_drain_stderr(proc.stderr))
    try:
        response = await _stream_out(request, proc.stdout, pump)
        await pump
        return response
    finally:
        for task in (pump, drain):
            task.cancel()
        await asyncio.gather(pump, drain, return_exceptions=True)


async def _stream_out(
    request: web.Request, stdout: asyncio.StreamReader, pump: asyncio.Future[None]
) -> web.StreamResponse:
    buffer = b""
    while (parts := split_header_block(buffer)) is None:
        chunk = await stdout.read(CHUNK)
        if not chunk:
            if pump.done() and pump.exception():
                raise BadRequest("request body could not be read")
            raise CgiHeaderError("git http-backend ended without headers")
        buffer += chunk
    block, rest = parts
    cgi = parse_headers(block)
    response = web.StreamResponse(status=cgi.status, reason=cgi.reason)
    for name, value in cgi.headers:
        response.headers[name] = value
    await response.prepare(request)
    if rest:
        await response.write(rest)
    while chunk := await stdout.read(CHUNK):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _pump_body(request: web.Request, stdin: asyncio.StreamWriter) -> None:
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            stdin.write(chunk)
            await stdin.drain()
    finally:
        await _close(stdin)


async def _close(stdin: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, BrokenPipeError, RuntimeError):
        stdin.close()
        await stdin.wait_closed()


async def _drain_stderr(stderr: asyncio.StreamReader) -> None:
    while line := await stderr.readline():
        log.warning("git http-backend: %s", line.decode("utf-8", "replace").rstrip()[:500])


def _report_path(ctx: AppContext) -> Path:
    folder = ctx.settings.data_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve() / f"push-{uuid.uuid4().hex}"


async def _after_push(ctx: AppContext, repo: Repo, user: object, report: Path) -> None:
    """Events come from the refs git updated (post-receive), never from the HTTP status."""
    try:
        data = await asyncio.to_thread(_read_and_remove, report)
        updates = parse_push_report(data)
        if updates:
            actor = getattr(user, "login", None)
            await record_push(ctx, repo, actor, updates)
    except Exception:
        log.exception("recording push events for %s failed", repo.full_name)


def _read_and_remove(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b""
    os.unlink(path)
    return data


def add_routes(app: web.Application) -> None:
    base = "/{owner}/{repo}"
    app.router.add_get(base + "/info/refs", info_refs, allow_head=False)
    app.router.add_post(base + "/{service:git-upload-pack|git-receive-pack}", service_rpc)
    app.router.add_route("*", base + "/{tail:.*}", not_served)
