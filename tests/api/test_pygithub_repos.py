"""PyGithub (synchronous, run in a thread) against the live server: users, repositories,
edit, delete, collaborators. The browse calls (branches, commits, contents) are covered by
the git-reads tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import github
import pytest
from github import Auth, Github

from tests.api.resources_world import World, world
from tests.helpers import PASSWORD, Git

__all__ = ["world"]
T = TypeVar("T")


def client(world: World, login: str) -> Github:
    return Github(
        base_url=f"{world.server.url}/api/v1",
        auth=Auth.Token(world.tokens[login]),
        retry=None,
        per_page=2,
    )


async def run(call: Callable[[], T]) -> T:
    """PyGithub blocks: run it in a thread so this loop keeps serving the requests."""
    return await asyncio.to_thread(call)


async def test_get_user_and_repo(world: World) -> None:
    gh = client(world, "carol")
    me = await run(lambda: gh.get_user().login)
    assert me == "carol"
    alice = await run(lambda: gh.get_user("alice"))
    assert alice.login == "alice" and alice.id == world.users["alice"].id
    assert alice.public_repos == 1
    repo = await run(lambda: gh.get_repo("alice/public"))
    assert repo.full_name == "alice/public"
    assert repo.default_branch == "main"
    assert repo.private is False
    assert repo.clone_url == f"{world.server.url}/alice/public.git"
    assert repo.owner.login == "alice"
    assert repo.size > 0
    assert repo.permissions.pull is True and repo.permissions.push is False
    assert repo.created_at is not None and repo.pushed_at is not None
    with pytest.raises(github.UnknownObjectException):
        await run(lambda: gh.get_repo("alice/secret"))
    # lists follow the Link header (per_page=2)
    names = await run(lambda: [u.login for u in gh.get_users()])
    assert names == ["alice", "bob", "carol", "root"]
    repos = await run(lambda: [r.full_name for r in gh.get_user("alice").get_repos()])
    assert repos == ["alice/public"]


async def test_create_edit_delete(world: World, git: Git, tmp_path: Path) -> None:
    gh = client(world, "bob")
    user = await run(gh.get_user)
    repo = await run(
        lambda: user.create_repo(
            "made-by-pygithub", description="hello", private=True, auto_init=True
        )
    )
    assert repo.full_name == "bob/made-by-pygithub"
    assert repo.private is True and repo.description == "hello"
    assert repo.permissions.admin is True
    url = world.server.git_url("bob/made-by-pygithub", "bob", world.tokens["bob"])
    (await git("clone", "-q", url, str(tmp_path / "c"))).check()
    assert (tmp_path / "c" / "README.md").read_text().startswith("# made-by-pygithub")

    await run(lambda: repo.edit(description="changed", private=False, has_issues=False))
    assert repo.description == "changed" and repo.private is False
    await run(lambda: repo.edit(name="renamed-by-pygithub"))
    assert repo.name == "renamed-by-pygithub"
    fetched = await run(lambda: client(world, "carol").get_repo("bob/renamed-by-pygithub"))
    assert fetched.description == "changed"

    await run(repo.delete)
    with pytest.raises(github.UnknownObjectException):
        await run(lambda: gh.get_repo("bob/renamed-by-pygithub"))


async def test_create_conflict_is_422(world: World) -> None:
    gh = client(world, "alice")
    user = await run(gh.get_user)
    with pytest.raises(github.GithubException) as caught:
        await run(lambda: user.create_repo("public"))
    assert caught.value.status == 422
    assert caught.value.data["errors"][0]["code"] == "already_exists"


async def test_collaborators(world: World) -> None:
    gh = client(world, "alice")
    repo = await run(lambda: gh.get_repo("alice/public"))
    invitation = await run(lambda: repo.add_to_collaborators("carol", permission="push"))
    assert invitation is not None and invitation.invitee.login == "carol"
    assert await run(lambda: repo.has_in_collaborators("carol")) is True
    assert await run(lambda: repo.get_collaborator_permission("carol")) == "write"
    changed = await run(lambda: repo.add_to_collaborators("carol", permission="admin"))
    assert changed is None  # 204: updated in place
    assert await run(lambda: repo.get_collaborator_permission("carol")) == "admin"
    listed = await run(lambda: [c.login for c in repo.get_collaborators()])
    assert listed == ["carol"]
    # carol (admin now) sees and edits it through her own client
    carols = await run(lambda: client(world, "carol").get_repo("alice/public"))
    assert carols.permissions.admin is True
    await run(lambda: repo.remove_from_collaborators("carol"))
    assert await run(lambda: repo.has_in_collaborators("carol")) is False
    assert await run(lambda: repo.get_collaborator_permission("carol")) == "read"


async def test_private_repo_collaborator_flow(world: World) -> None:
    gh = client(world, "alice")
    repo = await run(lambda: gh.get_repo("alice/secret"))
    carol = client(world, "carol")
    with pytest.raises(github.UnknownObjectException):
        await run(lambda: carol.get_repo("alice/secret"))
    await run(lambda: repo.add_to_collaborators("carol", permission="pull"))
    seen = await run(lambda: carol.get_repo("alice/secret"))
    assert seen.permissions.pull is True and seen.permissions.push is False
    await run(lambda: repo.remove_from_collaborators("carol"))
    with pytest.raises(github.UnknownObjectException):
        await run(lambda: carol.get_repo("alice/secret"))


async def test_password_login(world: World) -> None:
    gh = Github(
        base_url=f"{world.server.url}/api/v1", auth=Auth.Login("alice", PASSWORD), retry=None
    )
    assert await run(lambda: gh.get_user().login) == "alice"
