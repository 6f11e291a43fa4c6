"""Smart HTTP (CONTRACT §3): info/refs and the two services, streamed through
`git upload-pack` / `git receive-pack --stateless-rpc`, started directly in the
repository (app/git/smart.py says why not through `git http-backend`).
Request flow: resolve -> authorize -> run.

Only `info/refs?service=` and the two POST services reach git; anything else under a
repository path is 404, so no file of the repository directory is ever served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from app.auth.access import Access
from app.errors import AppError, BadRequest, NotFound
from app.git.hooks import PUSH_REPORT_ENV, parse_push_report
from app.git.process import open_git
from app.git.smart import (
    NO_CACHE_HEADERS,
    SERVICES,
    CapabilityCache,
    GitServiceFailed,
    GzipInflater,
    advertisement_preamble,
    content_type,
    protocol_version,
    service_args,
    service_env,
    valid_git_protocol,
)
from app.services.context import AppContext
from app.services.pushes import record_push
from app.services.repos import resolve
from app.store.records import Repo
from app.web.git_ops import flushed, git_operation, read_within, write_within
from app.web.keys import CTX, PRINCIPAL
from app.web.stamping import prepare

log = logging.getLogger(__name__)
CHUNK = 256 * 1024
_NO_CACHE = dict(NO_CACHE_HEADERS)
_EXIT_GRACE = 60.0  # seconds git may take to exit after its last output
CAPABILITIES = web.AppKey("smart_http_capabilities", CapabilityCache)


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
    git_protocol = valid_git_protocol(request.headers.get("Git-Protocol"))
    if service == "git-upload-pack" and protocol_version(git_protocol) == 2:
        return await _v2_capabilities(request, repo, git_protocol)
    return await _run(request, repo, service, "GET", "info/refs")


async def _v2_capabilities(
    request: web.Request, repo: Repo, git_protocol: str | None
) -> web.StreamResponse:
    """Protocol v2 info/refs: capabilities only, the same for a repository every time
    (CapabilityCache): asked of git once, then answered from memory."""
    cache = request.app[CAPABILITIES]
    key = (repo.id, repo.created_at)
    body = cache.get(key)
    if body is None:
        ctx = request.app[CTX]
        env = service_env(git_protocol=git_protocol, remote_user=None, remote_addr="")
        argv = service_args("git-upload-pack", advertise=True)
        path = ctx.storage.path(repo.owner, repo.name)
        async with (
            git_operation(request, repo, "git-upload-pack") as op,
            open_git(ctx.git, argv, env=env, cwd=path) as proc,
        ):
            body, err = await proc.communicate()
            if proc.returncode != 0 or not body:
                log.warning("git upload-pack: %s", err.decode("utf-8", "replace")[:500])
                raise GitServiceFailed()
            cache.put(key, body)
            op.response = _advertisement(body)
            return op.response
    return _advertisement(body)


def _advertisement(body: bytes) -> web.Response:
    ctype = content_type("git-upload-pack", advertise=True)
    return web.Response(body=body, headers={"Content-Type": ctype, **_NO_CACHE})


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
    """Run the service in the repository directly (see app/git/smart.py for why not
    `git http-backend`): GET advertises refs, POST runs the stateless RPC."""
    ctx = request.app[CTX]
    principal = request[PRINCIPAL]
    advertise = method == "GET"
    report = _report_path(ctx) if service == "git-receive-pack" and not advertise else None
    git_protocol = valid_git_protocol(request.headers.get("Git-Protocol"))
    env = service_env(
        git_protocol=git_protocol,
        remote_user=principal.user.login if principal.user else None,
        remote_addr=request.remote or "",
    )
    inflater = (
        GzipInflater(ctx.settings.git_max_push_bytes)
        if not advertise and _gzip_body(request)
        else None
    )
    after_push = None
    if report is not None:
        env[PUSH_REPORT_ENV] = str(report)
        after_push = _once(lambda: _after_push(ctx, repo, principal.user, report))
    argv = service_args(service, advertise=advertise)
    try:
        async with (
            git_operation(request, repo, service) as op,
            open_git(
                ctx.git,
                argv,
                env=env,
                stdin=not advertise,
                cwd=ctx.storage.path(repo.owner, repo.name),
            ) as proc,
        ):
            op.response = await _bridge(
                request,
                proc,
                inflater=inflater,
                content_type=content_type(service, advertise=advertise),
                preamble=advertisement_preamble(service, git_protocol) if advertise else b"",
                before_eof=after_push,
            )
            return op.response
    finally:
        if after_push is not None:  # also when the client went away: git may have updated refs
            await after_push()


async def _bridge(
    request: web.Request,
    proc: asyncio.subprocess.Process,
    *,
    inflater: GzipInflater | None,
    content_type: str,
    preamble: bytes,
    before_eof: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Pump the body in, the response out and stderr to the log, all at once
    (git deadlocks when both directions outgrow the pipe buffers)."""
    assert proc.stdout is not None and proc.stderr is not None
    tasks = [asyncio.ensure_future(_drain_stderr(proc.stderr))]
    pump = None
    if proc.stdin is not None:
        pump = asyncio.ensure_future(_pump_body(request, proc.stdin, inflater))
        tasks.append(pump)
    try:
        response = await _stream_out(request, proc, pump, content_type, preamble, before_eof)
        if pump is not None:
            await pump
        # Let git finish (receive-pack's post-receive hook) rather than kill it on exit.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), _EXIT_GRACE)
        return response
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _stream_out(
    request: web.Request,
    proc: asyncio.subprocess.Process,
    pump: asyncio.Future[None] | None,
    content_type: str,
    preamble: bytes,
    before_eof: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Headers go out with git's first output, so a git that fails before writing
    anything gets an error status rather than a 200 with an empty body.

    `before_eof` runs after git exited and before the response ends: a push's events
    are stored by the time `git push` returns."""
    assert proc.stdout is not None
    stdout = proc.stdout
    first = await stdout.read(CHUNK)
    if not first:
        code = await proc.wait()
        if pump is not None:
            await asyncio.wait({pump}, timeout=5)
            failure = pump.exception() if pump.done() and not pump.cancelled() else None
            if isinstance(failure, AppError):
                raise failure
            if failure is not None:
                raise BadRequest("request body could not be read")
        if code != 0:
            if pump is not None:
                raise BadRequest("git could not serve this request")
            raise GitServiceFailed()
    response = web.StreamResponse(headers={"Content-Type": content_type, **_NO_CACHE})
    await prepare(request, response)
    idle = request.app[CTX].settings.git_idle_timeout
    if preamble or first:
        await write_within(response, preamble + first, idle)
    while chunk := await stdout.read(CHUNK):
        await write_within(response, chunk, idle)
    if before_eof is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), _EXIT_GRACE)
        await before_eof()
    await response.write_eof()
    await flushed(request, idle)
    return response


async def _pump_body(
    request: web.Request, stdin: asyncio.StreamWriter, inflater: GzipInflater | None
) -> None:
    idle = request.app[CTX].settings.git_idle_timeout
    try:
        while chunk := await read_within(request.content, CHUNK, idle):
            pieces = inflater.feed(chunk) if inflater is not None else (chunk,)
            for piece in pieces:
                if not await _feed(stdin, piece):
                    return
        if inflater is not None:
            inflater.finish()
    finally:
        await _close(stdin)


async def _feed(stdin: asyncio.StreamWriter, data: bytes) -> bool:
    """False once git stopped reading (it exited early; its output says why)."""
    try:
        stdin.write(data)
        await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


async def _close(stdin: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, BrokenPipeError, RuntimeError):
        stdin.close()
        await stdin.wait_closed()


async def _drain_stderr(stderr: asyncio.StreamReader) -> None:
    while line := await stderr.readline():
        log.warning("git: %s", line.decode("utf-8", "replace").rstrip()[:500])


def _once(make: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """An async callable that runs `make()` once, shielded; later calls wait for that run."""
    task: asyncio.Future[None] | None = None

    async def run() -> None:
        nonlocal task
        if task is None:
            task = asyncio.ensure_future(make())
        await asyncio.shield(task)

    return run


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
    app[CAPABILITIES] = CapabilityCache()
    base = "/{owner}/{repo}"
    app.router.add_get(base + "/info/refs", info_refs, allow_head=False)
    app.router.add_post(base + "/{service:git-upload-pack|git-receive-pack}", service_rpc)
    # The catch-all leaves /api alone, so an API path with an unknown method is 405
    # (with Allow) rather than this route's 404.
    app.router.add_route("*", "/{owner:(?!api/)[^{}/]+}/{repo}/{tail:.*}", not_served)
