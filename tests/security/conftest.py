"""A populated server for hostile cases, and the two checks every case ends with:
`safe()` (a status below 500, no path, no traceback, no repository file in the body)
and `intact()` (every stored ref, object and row is still there)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from app.settings import Settings
from app.store.records import Repo, User
from tests.helpers import PASSWORD, Git, Server, make_settings, start_server

LEAKS = (
    "Traceback",
    'File "/',
    "site-packages",
    "/tmp/",
    "/home/",
    "/root/",
    "root:x:0:0",
    "repositoryformatversion",
    "[core]",
)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class World:
    server: Server
    git: Git
    tmp: Path
    session: aiohttp.ClientSession
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # full name -> for-each-ref output
    head: str = ""

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        data: Any = None,
        token: str | None = None,
        encoded: bool = True,
    ) -> Reply:
        """Send `path` exactly as written (no client-side normalisation of `..` or `%2F`)."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"token {token}"
        url = URL(self.server.url + path, encoded=encoded)
        async with self.session.request(
            method, url, headers=sent, data=data, allow_redirects=False
        ) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.read())

    def safe(self, reply: Reply) -> Reply:
        assert reply.status < 500, (reply.status, reply.text[:500])
        text = reply.text
        data_dir = str(self.server.settings.data_dir.resolve())
        assert data_dir not in text, text[:500]
        for leak in LEAKS:
            assert leak not in text, (leak, text[:500])
        return reply

    async def snapshot(self) -> None:
        for name, repo in self.repos.items():
            self.refs[name] = await self._refs(repo)

    async def _refs(self, repo: Repo) -> str:
        bare = self.server.ctx.storage.path(repo.owner, repo.name)
        return (await self.git("for-each-ref", cwd=bare)).check().out

    async def intact(self, *, skip: tuple[str, ...] = ()) -> None:
        """Nothing stored was lost: rows, refs and a clean fsck for every repository."""
        store = self.server.ctx.store
        for login in self.users:
            assert await store.user_by_login(login) is not None
        for name, repo in self.repos.items():
            if name in skip:
                continue
            assert await store.repo_by_name(repo.owner, repo.name) is not None, name
            assert await self._refs(repo) == self.refs[name], name
            bare = self.server.ctx.storage.path(repo.owner, repo.name)
            (await self.git("fsck", "--no-dangling", "--no-progress", cwd=bare)).check()


def hostile_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Hostile cases send many wrong credentials: the limits are tested on their own."""
    values: dict[str, Any] = {
        "rate_limit": "1000000/hour",
        "rate_limit_anonymous": "1000000/hour",
        "auth_failure_limit": "1000000/minute",
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return hostile_settings(tmp_path)


async def push_history(world: World, full_name: str, secret: str) -> str:
    work = world.tmp / ("work-" + full_name.replace("/", "-"))
    await world.git.make_worktree(work, {"README.md": "hello\n", "src/app.py": "print(1)\n"})
    (work / "README.md").write_text("hello again\n")
    (await world.git("commit", "-qam", "second", cwd=work)).check()
    url = world.server.git_url(full_name, "x", secret)
    (await world.git("push", "-q", url, "main", cwd=work)).check()
    return (await world.git("rev-parse", "HEAD", cwd=work)).check().out.strip()


async def populate(server: Server, git: Git, tmp: Path) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        w = World(server, git, tmp, session)
        for login in ("alice", "bob"):
            w.users[login] = await server.user(login)
            w.tokens[login] = await server.token(w.users[login])
        w.tokens["alice-read"] = await server.token(w.users["alice"], scopes="read")
        w.repos["pub"] = await server.repo(w.users["alice"], "pub")
        w.repos["priv"] = await server.repo(w.users["alice"], "priv", private=True)
        w.head = await push_history(w, "alice/pub", w.tokens["alice"])
        await push_history(w, "alice/priv", w.tokens["alice"])
        await w.snapshot()
        yield w


@pytest.fixture
async def world(server: Server, git: Git, tmp_path: Path) -> AsyncIterator[World]:
    """A fresh world per case: for cases that push, delete or kill things."""
    async for w in populate(server, git, tmp_path):
        yield w


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One world for a module of read-only cases (mark the module's tests with
    `pytest.mark.asyncio(loop_scope="module")`); each case still checks `intact()`."""
    tmp = tmp_path_factory.mktemp("shared")
    home = tmp / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    server = await start_server(hostile_settings(tmp))
    try:
        async for w in populate(server, Git(home), tmp):
            yield w
    finally:
        await server.test_server.close()


__all__ = ["PASSWORD", "Reply", "World", "hostile_settings", "shared", "world"]
