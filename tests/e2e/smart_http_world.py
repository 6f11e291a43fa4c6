"""A small world for the Smart HTTP end-to-end tests (imported by tests/e2e/test_smart_http*.py).

alice owns a public `pub` and a private `priv`, each with one commit on `main`;
rita reads `priv`, wendy writes it, mallory is a stranger. Repositories are seeded
by pushing to the bare directory on disk, so the server under test is only used
for what a test is about.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.store.records import Repo, User
from tests.helpers import PASSWORD, Git, Server


@dataclass
class World:
    server: Server
    git: Git
    tmp: Path
    alice: User
    rita: User
    wendy: User
    mallory: User
    pub: Repo
    priv: Repo
    pub_sha: str
    priv_sha: str

    def url(self, full_name: str, login: str | None = None, secret: str = PASSWORD) -> str:
        return self.server.git_url(full_name, login, secret if login else None)

    def bare(self, repo: Repo) -> Path:
        return self.server.ctx.storage.path(repo.owner, repo.name)

    async def clone(self, url: str, name: str, *args: str, **env: str) -> tuple[int, str, Path]:
        """`git clone URL tmp/name ARGS`; returns (exit code, stderr, target)."""
        target = self.tmp / name
        result = await self.git("clone", "-q", *args, url, str(target), env=env or None)
        return result.code, result.err, target

    async def head(self, worktree: Path, rev: str = "HEAD") -> str:
        return (await self.git("rev-parse", rev, cwd=worktree)).check().out.strip()


async def seed(git: Git, worktree: Path, bare: Path, files: dict[str, bytes | str]) -> str:
    """Commit files in a fresh worktree and push them straight into the bare repo."""
    sha = await git.make_worktree(worktree, files)
    (await git("push", "-q", str(bare), "main", cwd=worktree)).check()
    return sha


@pytest.fixture
async def world(server: Server, git: Git, tmp_path: Path) -> World:
    alice = await server.user("alice")
    rita = await server.user("rita")
    wendy = await server.user("wendy")
    mallory = await server.user("mallory")
    pub = await server.repo(alice, "pub")
    priv = await server.repo(alice, "priv", private=True)
    await server.collaborator(priv, rita, "read")
    await server.collaborator(priv, wendy, "write")
    storage = server.ctx.storage
    pub_sha = await seed(
        git, tmp_path / "seed-pub", storage.path("alice", "pub"), {"README.md": "public\n"}
    )
    priv_sha = await seed(
        git, tmp_path / "seed-priv", storage.path("alice", "priv"), {"secret.txt": "private\n"}
    )
    return World(server, git, tmp_path, alice, rita, wendy, mallory, pub, priv, pub_sha, priv_sha)


_STATUS_LINE = re.compile(r"Recv header: HTTP/[0-9.]+ (\d{3})")
_HEADER_LINE = re.compile(r"Recv header: ([A-Za-z-]+): (.*)")


def http_statuses(trace: str) -> list[int]:
    """The status codes the git client received, from its GIT_CURL_VERBOSE trace."""
    return [int(code) for code in _STATUS_LINE.findall(trace)]


def http_headers(trace: str) -> list[tuple[str, str]]:
    """(name, value) of every header the git client received (names lower-cased)."""
    return [(name.lower(), value.strip()) for name, value in _HEADER_LINE.findall(trace)]


def git_processes_of(marker: str) -> list[int]:
    """Pids of live processes whose environment mentions `marker` (a test's data dir).

    Every git process the server starts (http-backend and the upload-pack /
    pack-objects it forks) inherits GIT_PROJECT_ROOT or the git home under the data
    dir, so this finds orphans too, not only our direct children.
    """
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != b"Z":
            found.append(int(entry))
    return found


def child_pids() -> list[int]:
    """Direct children of this test process that are still running (not zombies)."""
    pids = []
    me = str(os.getpid()).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != b"Z":
            pids.append(int(entry))
    return pids


async def wait_until_gone(marker: str, timeout: float = 20.0) -> list[int]:
    """Poll until no process of the marker is left (or the timeout); returns survivors."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := git_processes_of(marker)) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    return left
