"""A populated server for the resource API tests: users, tokens, repositories with pushed
history (real git), a collaborator, and a small JSON client."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.store.records import Repo, User
from tests.helpers import PASSWORD, Git, Server


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Api:
    """JSON calls to the live server, optionally as someone (a token)."""

    session: aiohttp.ClientSession
    base: str

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"token {token}"
        if json_body is not None:
            data = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        url = path if path.startswith("http") else f"{self.base}{path}"
        payload = None
        if data is not None:
            payload = io.BytesIO(data.encode() if isinstance(data, str) else data)
        async with self.session.request(
            method, url, data=payload, headers=sent, allow_redirects=False
        ) as response:
            text = await response.text()
            return Reply(response.status, dict(response.headers), text)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)


@dataclass
class World:
    server: Server
    api: Api
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    head: str = ""


async def push_files(server: Server, git: Git, tmp: Path, full_name: str, secret: str) -> str:
    """Push a small history (two commits on main, one branch) into full_name; the head sha."""
    work = tmp / full_name.replace("/", "_")
    await git.make_worktree(work, {"README.md": "hello\n", "src/app.py": "print(1)\n"})
    (work / "README.md").write_text("hello again\n")
    (await git("commit", "-qam", "second", cwd=work)).check()
    (await git("branch", "feature", cwd=work)).check()
    url = server.git_url(full_name, "x", secret)
    (await git("push", "-q", url, "main", "feature", cwd=work)).check()
    return (await git("rev-parse", "HEAD", cwd=work)).check().out.strip()


@pytest.fixture
async def world(server: Server, git: Git, tmp_path: Path) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        w = World(server, Api(session, server.url))
        for login in ("alice", "bob", "carol"):
            w.users[login] = await server.user(login)
            w.tokens[login] = await server.token(w.users[login])
        w.users["root"] = await server.user("root", admin=True)
        w.tokens["root"] = await server.token(w.users["root"])
        w.repos["public"] = await server.repo(w.users["alice"], "public")
        w.repos["secret"] = await server.repo(w.users["alice"], "secret", private=True)
        w.head = await push_files(server, git, tmp_path, "alice/public", w.tokens["alice"])
        await push_files(server, git, tmp_path, "alice/secret", w.tokens["alice"])
        await server.collaborator(w.repos["secret"], w.users["bob"], "read")
        yield w


__all__ = ["PASSWORD", "Api", "Reply", "World", "push_files", "world"]
