"""A server with repositories pushed by real git, for the repository-reading API tests.

alice owns `alice/pub` (public) and `alice/priv` (private, same history); bob is a
stranger. History of main (oldest first, committer dates one day apart from 2024-01-01):

  c1  add README.md, src/app.py, docs/guide.md, bin/blob.dat (binary)
  c2  modify README.md
  c3  add src/util.py
  c4  rename docs/guide.md -> docs/manual.md
  c5  delete src/util.py
  c6  modify src/app.py (author "Other Person <other@example.com>")
  c7  modify README.md

`feature/x` branches from c7 with one commit (adds feature.txt); tags: v1.0 (annotated,
on c4) and v0.1 (lightweight, on c1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from tests.helpers import PASSWORD, Git, Server


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class World:
    server: Server
    session: aiohttp.ClientSession
    tokens: dict[str, str] = field(default_factory=dict)
    shas: dict[str, str] = field(default_factory=dict)  # c1..c7, feature

    @property
    def api(self) -> str:
        return f"{self.server.url}/api/v1"

    async def get(
        self,
        path: str,
        *,
        who: str | None = "alice",
        headers: Mapping[str, str] | None = None,
        redirects: bool = False,
        encoded: bool = False,
    ) -> Reply:
        sent = dict(headers or {})
        if who is not None:
            sent["Authorization"] = f"token {self.tokens[who]}"
        text = path if path.startswith("http") else f"{self.api}{path}"
        url = yarl.URL(text, encoded=encoded)  # encoded: sent exactly as written
        async with self.session.get(url, headers=sent, allow_redirects=redirects) as response:
            return Reply(response.status, response.headers, await response.read())


def _when(day: int) -> dict[str, str]:
    stamp = f"2024-01-{day:02d}T12:00:00Z"
    return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


async def _commit(git: Git, work: Path, message: str, day: int, **env: str) -> str:
    (await git("add", "-A", cwd=work)).check()
    (await git("commit", "-q", "-m", message, cwd=work, env={**_when(day), **env})).check()
    return (await git("rev-parse", "HEAD", cwd=work)).check().out.strip()


async def make_history(git: Git, work: Path) -> dict[str, str]:
    shas: dict[str, str] = {}
    (await git("init", "-q", "-b", "main", str(work))).check()
    files = {
        "README.md": "# Hello\n\nfirst\n",
        "src/app.py": "print('hello')\n",
        "docs/guide.md": "A guide.\n" * 20,
        "bin/blob.dat": bytes(range(256)) * 4,
    }
    for name, content in files.items():
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    shas["c1"] = await _commit(git, work, "first commit", 1)
    (work / "README.md").write_text("# Hello\n\nsecond\n")
    shas["c2"] = await _commit(git, work, "second: readme", 2)
    (work / "src/util.py").write_text("def util():\n    return 1\n")
    shas["c3"] = await _commit(git, work, "third: util", 3)
    (await git("mv", "docs/guide.md", "docs/manual.md", cwd=work)).check()
    shas["c4"] = await _commit(git, work, "fourth: rename guide", 4)
    (work / "src/util.py").unlink()
    shas["c5"] = await _commit(git, work, "fifth: drop util", 5)
    (work / "src/app.py").write_text("print('hello')\nprint('world')\n")
    other = {"GIT_AUTHOR_NAME": "Other Person", "GIT_AUTHOR_EMAIL": "other@example.com"}
    shas["c6"] = await _commit(git, work, "sixth: app", 6, **other)
    (work / "README.md").write_text("# Hello\n\nseventh\n")
    shas["c7"] = await _commit(git, work, "seventh: readme", 7)
    (await git("checkout", "-q", "-b", "feature/x", cwd=work)).check()
    (work / "feature.txt").write_text("feature\n")
    shas["feature"] = await _commit(git, work, "feature work", 8)
    (await git("checkout", "-q", "main", cwd=work)).check()
    (await git("tag", "-a", "v1.0", "-m", "release 1.0", shas["c4"], cwd=work)).check()
    (await git("tag", "v0.1", shas["c1"], cwd=work)).check()
    return shas


async def build_world(server: Server, git: Git, tmp: Path, session: aiohttp.ClientSession) -> World:
    world = World(server, session)
    alice = await server.user("alice")
    bob = await server.user("bob")
    world.tokens["alice"] = await server.token(alice)
    world.tokens["bob"] = await server.token(bob)
    await server.repo(alice, "pub")
    await server.repo(alice, "priv", private=True)
    work = tmp / "work"
    world.shas = await make_history(git, work)
    for name in ("pub", "priv"):
        url = server.git_url(f"alice/{name}", "alice", PASSWORD)
        (await git("push", "-q", url, "--all", cwd=work)).check()
        (await git("push", "-q", url, "--tags", cwd=work)).check()
    return world
