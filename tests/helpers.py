"""Shared test helpers: a real server on 127.0.0.1:0, real git, real SQLite."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from app.app import create_app, runner_kwargs
from app.services.context import AppContext
from app.services.repos import create_repo
from app.services.users import create_token, create_user
from app.settings import Settings
from app.store.records import Repo, User
from app.web.keys import CTX, SETTINGS

PASSWORD = "correct-horse-battery"


@dataclass
class GitResult:
    code: int
    out: str
    err: str

    def check(self) -> GitResult:
        assert self.code == 0, f"git failed ({self.code}): {self.err}\n{self.out}"
        return self


@dataclass
class Git:
    """Runs the real git binary without blocking the loop that serves the request."""

    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "LC_ALL": "C",
            "GIT_AUTHOR_NAME": "Test Author",
            "GIT_AUTHOR_EMAIL": "author@example.com",
            "GIT_COMMITTER_NAME": "Test Committer",
            "GIT_COMMITTER_EMAIL": "committer@example.com",
        }
        env.update(self.extra_env)
        env.update(extra or {})
        return env

    async def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        timeout: float = 300,
    ) -> GitResult:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=str(cwd or self.home),
            env=self.env(env),
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), timeout)
        except BaseException:
            proc.kill()
            await proc.wait()
            raise
        return GitResult(
            proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def make_worktree(
        self, path: Path, files: Mapping[str, bytes | str], message: str = "initial"
    ) -> str:
        """A fresh repository with one commit of `files`; returns the commit sha."""
        (await self("init", "-q", "-b", "main", str(path))).check()
        for name, content in files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        (await self("add", "-A", cwd=path)).check()
        (await self("commit", "-q", "-m", message, cwd=path)).check()
        return (await self("rev-parse", "HEAD", cwd=path)).check().out.strip()


@dataclass
class Server:
    """A running app on 127.0.0.1:0 with helpers to make users, tokens and repos."""

    test_server: TestServer
    settings: Settings

    @property
    def app(self) -> web.Application:
        return self.test_server.app  # type: ignore[return-value]

    @property
    def ctx(self) -> AppContext:
        return self.app[CTX]

    @property
    def url(self) -> str:
        return str(self.test_server.make_url("")).rstrip("/")

    def git_url(self, full_name: str, login: str | None = None, secret: str | None = None) -> str:
        host = f"{self.test_server.host}:{self.test_server.port}"
        auth = f"{login}:{secret}@" if login else ""
        return f"http://{auth}{host}/{full_name}.git"

    async def user(self, login: str, *, admin: bool = False, password: str = PASSWORD) -> User:
        return await create_user(
            self.ctx, login, password=password, email=f"{login}@example.com", is_admin=admin
        )

    async def token(self, user: User, scopes: str = "read,write,admin") -> str:
        _, secret = await create_token(self.ctx, user, name="test", scopes=scopes)
        return secret

    async def repo(self, owner: User, name: str, *, private: bool = False) -> Repo:
        return await create_repo(self.ctx, owner, name, private=private)

    async def collaborator(self, repo: Repo, user: User, permission: str) -> None:
        await self.ctx.store.set_collaborator(repo.id, user.id, permission)


def basic(login: str, secret: str) -> dict[str, str]:
    value = base64.b64encode(f"{login}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {value}"}


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path / "data", "secret_key": "t" * 48}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class AppTestServer(TestServer):
    """TestServer with the runner options the real server (app/server.py) uses. aiohttp's
    TestServer drops constructor kwargs (so e.g. auto_decompress=False never applied)
    and turns handler cancellation on, which the server does not."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        kwargs.pop("handler_cancellation", None)
        settings = self.app[SETTINGS]
        kwargs["shutdown_timeout"] = settings.shutdown_timeout
        return web.AppRunner(self.app, **{**kwargs, **runner_kwargs(settings)})


async def start_server(settings: Settings) -> Server:
    test_server = AppTestServer(create_app(settings), host="127.0.0.1", port=0)
    await test_server.start_server()
    return Server(test_server, settings)


def lines(text: str) -> Sequence[str]:
    return [line for line in text.splitlines() if line.strip()]
