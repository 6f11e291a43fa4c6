"""What the event tests share: a real WebSocket client of /api/v1/events, and pushes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import PASSWORD, Git, Server

WAIT = 60.0  # a generous bound for anything to arrive: never a speed check


class Sub:
    """One subscriber: collects `event` messages; other messages go to `other`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def next(self, timeout: float = WAIT) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"socket closed or not text: {message!r}")
        data: dict[str, Any] = json.loads(message.data)
        (self.events if data.get("type") == "event" else self.other).append(data)
        return data

    async def subscribe(self, repos: list[str] | None = None, since_id: int | None = None) -> None:
        message: dict[str, Any] = {"type": "subscribe"}
        if repos is not None:
            message["repos"] = repos
        if since_id is not None:
            message["since_id"] = since_id
        await self.send(message)
        await self.sync()

    async def sync(self) -> list[dict[str, Any]]:
        """Ping, wait for the pong: returns the events that came before it."""
        before = len(self.events)
        await self.send({"type": "ping"})
        while (await self.next()).get("type") != "pong":
            pass
        return self.events[before:]

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        while len(self.events) < count:
            await self.next()
        return list(self.events)

    async def until(self, repo: str, event: str = "push") -> list[dict[str, Any]]:
        """Read until an `event` of `repo` arrives; returns every event read meanwhile."""
        start = len(self.events)
        while True:
            data = await self.next()
            if data.get("type") == "event" and data["repo"] == repo and data["event"] == event:
                return self.events[start:]


@contextlib.asynccontextmanager
async def subscriber(
    server: Server,
    secret: str | None = None,
    repos: list[str] | None = None,
    since_id: int | None = None,
    *,
    query: str = "",
    subscribe: bool = True,
) -> AsyncIterator[Sub]:
    headers = {"Authorization": f"token {secret}"} if secret else {}
    url = server.url.replace("http://", "ws://") + "/api/v1/events" + query
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers=headers, autoping=True) as ws,
    ):
        sub = Sub(ws)
        if subscribe:
            await sub.subscribe(repos, since_id)
        yield sub


class Pusher:
    """A worktree of one repository, pushed with real git over Smart HTTP."""

    def __init__(self, server: Server, git: Git, path: Path, full_name: str, login: str):
        self.server, self.git, self.path = server, git, path
        self.full_name = full_name
        self.remote = server.git_url(full_name, login, PASSWORD)
        self.count = 0

    async def init(self) -> str:
        return await self.git.make_worktree(self.path, {"README.md": "hello\n"})

    async def commit(self, message: str | None = None) -> str:
        self.count += 1
        (self.path / f"file{self.count}.txt").write_text(f"{self.count}\n")
        (await self.git("add", "-A", cwd=self.path)).check()
        (
            await self.git("commit", "-q", "-m", message or f"commit {self.count}", cwd=self.path)
        ).check()
        return await self.rev("HEAD")

    async def rev(self, ref: str) -> str:
        return (await self.git("rev-parse", ref, cwd=self.path)).check().out.strip()

    async def push(self, *refspecs: str) -> None:
        (await self.git("push", "-q", self.remote, *(refspecs or ("main",)), cwd=self.path)).check()

    async def commit_and_push(self, message: str | None = None) -> str:
        sha = await self.commit(message)
        await self.push()
        return sha
