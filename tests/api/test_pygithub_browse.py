"""PyGithub, unchanged, pointed at this server with one base URL: the reading calls.

PyGithub is synchronous (requests), so each call runs in a thread while this test's
event loop keeps serving the real server.
"""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
from github import Auth, Github
from github.GithubException import GithubException, UnknownObjectException
from github.PaginatedList import PaginatedList

from tests.api.browse_world import World, build_world
from tests.helpers import Git, Server

T = TypeVar("T")


@pytest.fixture
async def world(server: Server, git: Git, tmp_path: Path) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        yield await build_world(server, git, tmp_path, session)


async def in_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


def client(world: World, who: str = "alice", per_page: int = 30, lazy: bool = False) -> Github:
    token = Auth.Token(world.tokens[who])
    return Github(base_url=world.api, auth=token, per_page=per_page, lazy=lazy)


async def test_branches_tags_and_commits(world: World) -> None:
    gh = client(world, per_page=2)
    shas = world.shas

    def run() -> None:
        repo = gh.get_repo("alice/priv")
        assert {b.name for b in repo.get_branches()} == {"main", "feature/x"}
        branch = repo.get_branch("feature/x")
        assert branch.commit.sha == shas["feature"]
        assert branch.commit.commit.message.startswith("feature work")
        tags = {t.name: t.commit.sha for t in repo.get_tags()}
        assert tags == {"v1.0": shas["c4"], "v0.1": shas["c1"]}
        # per_page=2: seven commits come in four pages, followed through the Link header.
        commits = repo.get_commits()
        assert [c.sha for c in commits] == [shas[f"c{i}"] for i in range(7, 0, -1)]
        assert commits.totalCount == 7
        assert [c.sha for c in repo.get_commits(sha="feature/x", path="feature.txt")] == [
            shas["feature"]
        ]
        assert [c.sha for c in repo.get_commits(author="other@example.com")] == [shas["c6"]]
        one = repo.get_commit(shas["c4"])
        assert one.stats.total == 0 and one.files[0].status == "renamed"
        two = repo.get_commit("main")
        assert two.sha == shas["c7"]
        assert two.commit.author.name == "Test Author"
        assert two.files[0].filename == "README.md" and "+seventh" in two.files[0].patch
        assert two.parents[0].sha == shas["c6"]

    await in_thread(run)


async def test_compare(world: World) -> None:
    gh = client(world)
    shas = world.shas

    def run() -> None:
        repo = gh.get_repo("alice/priv")
        comparison = repo.compare("v1.0", "feature/x")
        assert comparison.status == "ahead"
        assert comparison.ahead_by == 4 and comparison.behind_by == 0
        assert comparison.merge_base_commit.sha == shas["c4"]
        assert [c.sha for c in comparison.commits] == [
            shas[k] for k in ("c5", "c6", "c7", "feature")
        ]
        assert {f.filename for f in comparison.files} >= {"feature.txt", "src/app.py"}

    await in_thread(run)


async def test_contents_and_trees(world: World) -> None:
    gh = client(world)

    def run() -> None:
        repo = gh.get_repo("alice/priv")
        readme = repo.get_contents("README.md")
        assert not isinstance(readme, list)
        assert readme.decoded_content == b"# Hello\n\nseventh\n"
        assert readme.type == "file" and readme.encoding == "base64"
        old = repo.get_contents("README.md", ref="v0.1")
        assert not isinstance(old, list)
        assert base64.b64decode(old.content) == b"# Hello\n\nfirst\n"
        listing = repo.get_contents("docs")
        assert isinstance(listing, list)
        assert [(c.path, c.type) for c in listing] == [("docs/manual.md", "file")]
        root = repo.get_contents("")
        assert isinstance(root, list) and {c.name for c in root} >= {"README.md", "src"}
        tree = repo.get_git_tree("main", recursive=True)
        paths = {e.path: e.type for e in tree.tree}
        assert paths["src/app.py"] == "blob" and paths["src"] == "tree"
        with pytest.raises(UnknownObjectException):
            repo.get_contents("no/such/file")

    await in_thread(run)


async def test_archive_link_downloads(world: World) -> None:
    gh = client(world)
    sha = world.shas["c7"]

    def run() -> bytes:
        repo = gh.get_repo("alice/priv")
        link = repo.get_archive_link("tarball", "main")
        assert link.startswith(f"{world.api}/repos/alice/priv/archive/{sha}.tar.gz?")
        with urllib.request.urlopen(link) as response:  # noqa: S310 (signed, no credentials)
            return bytes(response.read())

    data = await in_thread(run)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert f"alice-priv-{sha[:7]}/README.md" in tar.getnames()


async def test_stranger_sees_nothing(world: World) -> None:
    gh = client(world, "bob")
    lazy = client(world, "bob", lazy=True)

    def run() -> None:
        repo = gh.get_repo("alice/pub")
        with pytest.raises(GithubException) as bad:
            repo.get_commit("-x")
        assert bad.value.status == 422
        hidden = lazy.get_repo("alice/priv")
        for call in (
            hidden.get_branches,
            lambda: hidden.get_branch("main").commit,  # lazy objects load on first use
            lambda: hidden.get_commit("main").files,
            lambda: hidden.get_contents("README.md"),
            lambda: hidden.get_git_tree("main").tree,
            lambda: hidden.get_archive_link("zipball"),
        ):
            with pytest.raises(UnknownObjectException):
                result = call()
                if isinstance(result, PaginatedList):
                    list(result)

    await in_thread(run)
