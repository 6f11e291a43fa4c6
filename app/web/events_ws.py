"""The event stream: WebSocket `GET /api/v1/events` (CONTRACT §5).

Flow per socket: authenticate (header by the middleware, else `?access_token=`, else a
first message `{"type": "auth", "token": ...}`) -> a `Connection` joins the hub ->
client messages (subscribe, unsubscribe, ping) until the socket closes -> it leaves.

Everything the server sends goes through the Connection's queue, in order; the hub
never waits for a socket. A slow reader is closed with 1008, a broken live stream (Redis
lost) with 1011, everyone with 1001 when the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from app.auth.access import Principal
from app.errors import AppError, Unauthorized
from app.events.subscriber import Connection
from app.git.names import is_valid_owner, is_valid_repo, strip_git_suffix
from app.services.events import ReadAccess, replay_events
from app.services.identity import BadCredentials, from_secret
from app.store.records import Event
from app.web.api.docs import doc
from app.web.keys import CTX, PRINCIPAL
from app.web.stamping import prepare

log = logging.getLogger(__name__)

PATH = "/api/v1/events"
CLOSE_TIMEOUT = 5.0  # seconds a closing handshake may take before the socket is dropped


class UpgradeRequired(AppError):
    status = 426
    default_message = "this endpoint speaks WebSocket only: send an Upgrade request"


class Sessions:
    """The open sockets of one app, to close them all on shutdown."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.open: weakref.WeakSet[Session] = weakref.WeakSet()
        self.closing: set[asyncio.Task[None]] = set()

    async def replay(self, names: list[str] | None, since_id: int, limit: int) -> list[Event]:
        """The replay source every Connection of this app shares."""
        return await replay_events(self.app[CTX], names, since_id, limit)


SESSIONS = web.AppKey("event_sessions", Sessions)
READ_ACCESS = web.AppKey("event_read_access", ReadAccess)


class Session:
    """One socket: parses client messages and drives its Connection."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, principal: Principal):
        self.request = request
        self.ws = ws
        self.principal = principal
        self.authenticated = principal.user is not None
        self.messages = 0
        self.closing: asyncio.Task[None] | None = None
        ctx = request.app[CTX]
        self.connection = Connection(
            send=ws.send_str,
            request_close=self.request_close,
            gate=request.app[READ_ACCESS],
            replay_source=request.app[SESSIONS].replay,
            viewer=principal,
            queue_size=ctx.settings.ws_queue_size,
        )

    # Closing ------------------------------------------------------------------------
    def request_close(self, code: int, reason: str) -> None:
        """Close on the Connection's request (slow reader, hub interruption, bad auth)
        without waiting: the handler may be blocked in receive(), which this wakes. The
        handler awaits the task before it returns (else aiohttp would close with 1000)."""
        if self.closing is not None:
            return
        self.request.app[CTX].hub.discard(self.connection)
        sessions = self.request.app[SESSIONS]
        task = self.closing = asyncio.get_running_loop().create_task(self.close(code, reason))
        sessions.closing.add(task)
        task.add_done_callback(sessions.closing.discard)

    async def close(self, code: int, reason: str) -> None:
        self.connection.shutdown()
        transport = self.request.transport
        try:
            await asyncio.wait_for(
                # drain=False: a reader that reads nothing must not hold us here.
                self.ws.close(code=code, message=reason.encode()[:120], drain=False),
                CLOSE_TIMEOUT,
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            # A peer that reads nothing would keep unsent bytes (the close frame among
            # them) in our buffer forever: it has CLOSE_TIMEOUT to take them, then it is cut.
            if transport is not None and transport.get_write_buffer_size() > 0:
                asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, _cut_if_stuck, transport)

    # Client messages ----------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        self.connection.send_text(json.dumps(message, separators=(",", ":")))

    def error(self, message: str) -> None:
        self.send({"type": "error", "message": message})

    async def handle(self, raw: str) -> None:
        self.messages += 1
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            self.error("messages must be JSON objects")
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "ping":
            self.send({"type": "pong"})
        elif kind == "subscribe":
            await self.subscribe(data)
        elif kind == "unsubscribe":
            self.unsubscribe(data)
        elif kind == "auth":
            await self.authenticate(data)
        else:
            self.error("unknown message type; expected subscribe, unsubscribe, ping or auth")

    async def authenticate(self, data: dict[str, Any]) -> None:
        token = data.get("token")
        if self.authenticated or self.messages != 1:
            self.error("auth must be the first message of an unauthenticated connection")
            return
        if not isinstance(token, str) or not token or len(token) > 4096:
            self.connection.abort(WSCloseCode.POLICY_VIOLATION, "Bad credentials")
            return
        try:
            principal = await authenticate_token(self.request, token)
        except AppError as exc:
            self.connection.abort(WSCloseCode.POLICY_VIOLATION, exc.message)
            return
        self.principal = self.connection.viewer = principal
        self.authenticated = True
        assert principal.user is not None
        self.send({"type": "authenticated", "user": principal.user.login})

    async def subscribe(self, data: dict[str, Any]) -> None:
        names = _repo_names(data.get("repos"))
        since_id = data.get("since_id")
        if names is None:
            self.error('repos must be a list of "owner/name" strings')
            return
        if since_id is not None and (type(since_id) is not int or since_id < 0):
            self.error("since_id must be a non-negative integer")
            return
        # The log's position before registering: resuming from it misses nothing after.
        last_id = await self.request.app[CTX].store.last_event_id()
        try:
            # Registration and the ack are synchronous: every live event for these names
            # is queued after the ack (and after the replay, if any).
            keys = self.connection.subscribe(names or None, since_id)
        except ValueError as exc:
            self.error(str(exc))
            return
        self.send({"type": "subscribed", "repos": keys, "last_id": last_id})

    def unsubscribe(self, data: dict[str, Any]) -> None:
        names = _repo_names(data.get("repos"))
        if names is None:
            self.error('repos must be a list of "owner/name" strings')
            return
        keys = self.connection.unsubscribe(names or None)
        self.send({"type": "unsubscribed", "repos": keys})


def _cut_if_stuck(transport: asyncio.BaseTransport) -> None:
    if isinstance(transport, asyncio.WriteTransport) and transport.get_write_buffer_size() > 0:
        transport.abort()


def _repo_names(value: Any) -> list[str] | None:
    """["owner/name", ...] (a `.git` suffix is dropped) or None if anything is invalid."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 100:
        return None
    names = []
    for item in value:
        if not isinstance(item, str):
            return None
        if item == "*":
            return []
        owner, sep, name = item.partition("/")
        name = strip_git_suffix(name)
        if not sep or not is_valid_owner(owner) or not is_valid_repo(name):
            return None
        names.append(f"{owner}/{name}")
    return names


async def authenticate_token(request: web.Request, token: str) -> Principal:
    """A token or JWT from `?access_token=` or the auth message, through the failed-login
    limiter like every other credential."""
    from app.web.guards import LOGIN_GUARD

    guard = request.app.get(LOGIN_GUARD)
    address = request.remote or "-"
    if guard is not None and await guard.retry_after(address) is not None:
        raise Unauthorized("too many failed login attempts; try again later")
    try:
        return await from_secret(request.app[CTX], token)
    except BadCredentials:
        if guard is not None:
            await guard.failed(address)
        raise


@doc(
    summary="Event stream (WebSocket upgrade; see the README's Events section)",
    tags=["events"],
    errors=(401, 426),
)
async def events_ws(request: web.Request) -> web.StreamResponse:
    settings = request.app[CTX].settings
    principal = request[PRINCIPAL]
    token = request.query.get("access_token")
    if token and principal.user is None:
        principal = await authenticate_token(request, token)  # 401 before the upgrade
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat_seconds,
        max_msg_size=settings.ws_max_message_bytes,
        compress=False,  # a deflate context per socket costs far more than the bytes saved
        timeout=CLOSE_TIMEOUT,
    )
    if not ws.can_prepare(request).ok:
        raise UpgradeRequired()
    await prepare(request, ws)
    session = Session(request, ws, principal)
    await _run(request, session)
    return ws


async def _run(request: web.Request, session: Session) -> None:
    hub = request.app[CTX].hub
    sessions = request.app[SESSIONS]
    sessions.open.add(session)
    hub.add(session.connection)
    try:
        with _websocket_metric(request.app):
            async for message in session.ws:
                if message.type is WSMsgType.TEXT:
                    await session.handle(message.data)
                elif message.type is WSMsgType.BINARY:
                    session.error("binary messages are not accepted")
                if session.connection.closed:
                    break
        if session.closing is not None:
            await asyncio.shield(session.closing)
    finally:
        hub.discard(session.connection)
        session.connection.shutdown()
        sessions.open.discard(session)


@contextlib.contextmanager
def _websocket_metric(app: web.Application) -> Iterator[None]:
    from app.web import metrics

    if metrics.METRICS in app:
        with metrics.websocket_connection(app):
            yield
    else:
        yield


async def _read_access(app: web.Application) -> AsyncIterator[None]:
    ctx = app[CTX]
    access = app[READ_ACCESS] = ReadAccess(ctx.store)
    ctx.hub.on_notice(access.on_notice)
    yield


async def close_all(app: web.Application, code: int = WSCloseCode.GOING_AWAY) -> None:
    """Close every socket (1001 on shutdown), all at once, each within CLOSE_TIMEOUT."""
    sessions = app[SESSIONS]
    closing = [s.close(code, "server shutting down") for s in list(sessions.open)]
    await asyncio.gather(*closing, return_exceptions=True)
    if sessions.closing:
        await asyncio.gather(*list(sessions.closing), return_exceptions=True)


async def _on_shutdown(app: web.Application) -> None:
    await close_all(app)


def setup(app: web.Application) -> None:
    """The route, the shared access cache (after the context) and the shutdown close."""
    app[SESSIONS] = Sessions(app)
    app.cleanup_ctx.append(_read_access)
    app.on_shutdown.append(_on_shutdown)
    app.router.add_get(PATH, events_ws, allow_head=False)
