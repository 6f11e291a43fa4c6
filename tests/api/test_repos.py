"""Repositories over the REST API: shape, create (auto_init), update, rename, delete, lists."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.api.resources_world import World, world
from tests.helpers import Git

__all__ = ["world"]
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


async def test_get_repo_shape(world: World) -> None:
    reply = await world.api.get("/api/v1/repos/alice/public", token=world.tokens["carol"])
    assert reply.status == 200, reply.text
    repo = reply.json
    base = world.server.url
    assert repo["full_name"] == "alice/public"
    assert repo["url"] == f"{base}/api/v1/repos/alice/public"
    assert repo["clone_url"] == f"{base}/alice/public.git"
    assert repo["html_url"] == f"{base}/alice/public"
    assert repo["owner"]["login"] == "alice"
    assert repo["owner"]["url"] == f"{base}/api/v1/users/alice"
    assert repo["private"] is False and repo["visibility"] == "public"
    assert repo["default_branch"] == "main"
    assert repo["size"] > 0
    for key in ("created_at", "updated_at", "pushed_at"):
        assert TIMESTAMP.match(repo[key]), (key, repo[key])
    assert repo["permissions"] == {
        "admin": False,
        "maintain": False,
        "push": False,
        "triage": False,
        "pull": True,
    }
    assert repo["branches_url"] == f"{base}/api/v1/repos/alice/public/branches{{/branch}}"
    own = (await world.api.get("/api/v1/repos/alice/public", token=world.tokens["alice"])).json
    assert own["permissions"]["admin"] is True and own["permissions"]["push"] is True


async def test_git_suffix_and_case_insensitive(world: World) -> None:
    reply = await world.api.get("/api/v1/repos/ALICE/Public.git")
    assert reply.status == 200
    assert reply.json["full_name"] == "alice/public"


async def test_create_repo_with_auto_init(world: World, git: Git, tmp_path: Path) -> None:
    reply = await world.api.call(
        "POST",
        "/api/v1/user/repos",
        token=world.tokens["bob"],
        json_body={
            "name": "fresh",
            "description": "A new one",
            "private": True,
            "auto_init": True,
            "default_branch": "trunk",
            "has_issues": True,  # unknown fields are ignored
        },
    )
    assert reply.status == 201, reply.text
    repo = reply.json
    assert repo["full_name"] == "bob/fresh"
    assert repo["private"] is True and repo["default_branch"] == "trunk"
    assert repo["description"] == "A new one"
    assert TIMESTAMP.match(repo["pushed_at"])
    # The initial commit is real: clone it.
    url = world.server.git_url("bob/fresh", "bob", world.tokens["bob"])
    (await git("clone", "-q", url, str(tmp_path / "fresh"))).check()
    readme = (tmp_path / "fresh" / "README.md").read_text()
    assert readme == "# fresh\n\nA new one\n"
    branch = (await git("rev-parse", "--abbrev-ref", "HEAD", cwd=tmp_path / "fresh")).out
    assert branch.strip() == "trunk"
    log = (await git("log", "--format=%an <%ae>|%s", cwd=tmp_path / "fresh")).check().out
    assert log.strip() == "bob <bob@example.com>|Initial commit"
    # announced like a push of the new branch, after the repository.created event
    stored = await world.server.ctx.store.list_events([repo["id"]])
    assert [e.type for e in stored] == ["repository.created", "push", "branch.created"]
    assert json.loads(stored[1].payload)["ref"] == "refs/heads/trunk"
    # the server's own copy is bare (no worktree) and fsck-clean
    path = world.server.ctx.storage.path("bob", "fresh")
    assert not (path / "README.md").exists()
    (await git("--git-dir", str(path), "fsck", "--strict")).check()


async def test_create_repo_empty_and_conflict(world: World) -> None:
    body = {"name": "empty"}
    first = await world.api.call(
        "POST", "/api/v1/user/repos", token=world.tokens["carol"], json_body=body
    )
    assert first.status == 201
    assert first.json["private"] is False and first.json["pushed_at"] is None
    again = await world.api.call(
        "POST", "/api/v1/user/repos", token=world.tokens["carol"], json_body={"name": "EMPTY"}
    )
    assert again.status == 422
    assert again.json["errors"][0]["code"] == "already_exists"
    assert again.json["errors"][0]["field"] == "name"


async def test_create_needs_auth_and_write_scope(world: World) -> None:
    anonymous = await world.api.call("POST", "/api/v1/user/repos", json_body={"name": "x"})
    assert anonymous.status == 401
    reader = await world.server.token(world.users["carol"], scopes="read")
    refused = await world.api.call(
        "POST", "/api/v1/user/repos", token=reader, json_body={"name": "x"}
    )
    assert refused.status == 403


async def test_patch_description_visibility_default_branch(world: World) -> None:
    path = "/api/v1/repos/alice/public"
    reply = await world.api.call(
        "PATCH",
        path,
        token=world.tokens["alice"],
        json_body={"description": "changed", "private": True, "default_branch": "feature"},
    )
    assert reply.status == 200, reply.text
    assert reply.json["description"] == "changed"
    assert reply.json["private"] is True and reply.json["visibility"] == "private"
    assert reply.json["default_branch"] == "feature"
    head = (world.server.ctx.storage.path("alice", "public") / "HEAD").read_text()
    assert head.strip() == "ref: refs/heads/feature"
    # now invisible to strangers and anonymous callers
    assert (await world.api.get(path, token=world.tokens["carol"])).status == 404
    assert (await world.api.get(path)).status == 404
    back = await world.api.call(
        "PATCH", path, token=world.tokens["alice"], json_body={"visibility": "public"}
    )
    assert back.json["private"] is False
    assert (await world.api.get(path)).status == 200


async def test_patch_default_branch_must_exist(world: World) -> None:
    reply = await world.api.call(
        "PATCH",
        "/api/v1/repos/alice/public",
        token=world.tokens["alice"],
        json_body={"default_branch": "nope"},
    )
    assert reply.status == 422
    assert reply.json["errors"][0]["field"] == "default_branch"
    bad = await world.api.call(
        "PATCH",
        "/api/v1/repos/alice/public",
        token=world.tokens["alice"],
        json_body={"default_branch": "--upload-pack=x"},
    )
    assert bad.status == 422


async def test_rename(world: World, git: Git, tmp_path: Path) -> None:
    reply = await world.api.call(
        "PATCH",
        "/api/v1/repos/alice/public",
        token=world.tokens["alice"],
        json_body={"name": "renamed"},
    )
    assert reply.status == 200, reply.text
    assert reply.json["full_name"] == "alice/renamed"
    assert reply.json["url"].endswith("/api/v1/repos/alice/renamed")
    assert (await world.api.get("/api/v1/repos/alice/public")).status == 404
    assert (await world.api.get("/api/v1/repos/alice/renamed")).status == 200
    (await git("clone", "-q", world.server.git_url("alice/renamed"), str(tmp_path / "r"))).check()
    taken = await world.api.call(
        "PATCH",
        "/api/v1/repos/alice/renamed",
        token=world.tokens["alice"],
        json_body={"name": "secret"},
    )
    assert taken.status == 422
    assert taken.json["errors"][0]["code"] == "already_exists"
    for bad in ("bad name", "x.git", "..", "-x", "a" * 101):
        invalid = await world.api.call(
            "PATCH",
            "/api/v1/repos/alice/renamed",
            token=world.tokens["alice"],
            json_body={"name": bad},
        )
        assert invalid.status == 422, bad
        assert invalid.json["errors"][0]["field"] == "name"


async def test_patch_and_delete_need_admin(world: World) -> None:
    # bob reads alice/secret; he may not change or delete it
    for method in ("PATCH", "DELETE"):
        reply = await world.api.call(
            method, "/api/v1/repos/alice/secret", token=world.tokens["bob"], json_body={}
        )
        assert reply.status == 403, (method, reply.text)
        stranger = await world.api.call(
            method, "/api/v1/repos/alice/secret", token=world.tokens["carol"], json_body={}
        )
        assert stranger.status == 404
    anonymous = await world.api.call("DELETE", "/api/v1/repos/alice/public")
    assert anonymous.status == 401


async def test_delete(world: World) -> None:
    path = world.server.ctx.storage.path("alice", "secret")
    reply = await world.api.call(
        "DELETE", "/api/v1/repos/alice/secret", token=world.tokens["alice"]
    )
    assert reply.status == 204 and reply.text == ""
    assert not path.exists()
    gone = await world.api.get("/api/v1/repos/alice/secret", token=world.tokens["alice"])
    assert gone.status == 404
    again = await world.api.call(
        "DELETE", "/api/v1/repos/alice/secret", token=world.tokens["alice"]
    )
    assert again.status == 404


async def test_user_repos_lists(world: World) -> None:
    own = await world.api.get("/api/v1/user/repos", token=world.tokens["alice"])
    assert [r["full_name"] for r in own.json] == ["alice/public", "alice/secret"]
    bobs = await world.api.get("/api/v1/user/repos", token=world.tokens["bob"])
    assert [r["full_name"] for r in bobs.json] == ["alice/secret"]
    assert bobs.json[0]["permissions"]["pull"] is True
    assert bobs.json[0]["permissions"]["push"] is False
    owner_only = await world.api.get("/api/v1/user/repos?type=owner", token=world.tokens["bob"])
    assert owner_only.json == []
    public = await world.api.get(
        "/api/v1/user/repos?visibility=public", token=world.tokens["alice"]
    )
    assert [r["name"] for r in public.json] == ["public"]
    contradiction = await world.api.get(
        "/api/v1/user/repos?type=public&visibility=private", token=world.tokens["alice"]
    )
    assert contradiction.json == []
    by_alice = await world.api.get("/api/v1/users/alice/repos", token=world.tokens["carol"])
    assert [r["name"] for r in by_alice.json] == ["public"]
    by_alice_bob = await world.api.get("/api/v1/users/alice/repos", token=world.tokens["bob"])
    assert [r["name"] for r in by_alice_bob.json] == ["public", "secret"]
    assert (await world.api.get("/api/v1/user/repos")).status == 401
    assert (await world.api.get("/api/v1/users/nobody/repos")).status == 404


async def test_repo_list_pagination_link(world: World) -> None:
    for number in range(5):
        await world.server.repo(world.users["carol"], f"r{number}")
    first = await world.api.get("/api/v1/users/carol/repos?per_page=2")
    assert [r["name"] for r in first.json] == ["r0", "r1"]
    base = f"{world.server.url}/api/v1/users/carol/repos"
    assert first.headers["Link"] == (
        f'<{base}?per_page=2&page=2>; rel="next", <{base}?per_page=2&page=3>; rel="last"'
    )
    middle = await world.api.get("/api/v1/users/carol/repos?per_page=2&page=2")
    assert middle.headers["Link"] == (
        f'<{base}?per_page=2&page=1>; rel="prev", <{base}?per_page=2&page=3>; rel="next", '
        f'<{base}?per_page=2&page=3>; rel="last", <{base}?per_page=2&page=1>; rel="first"'
    )
    whole = await world.api.get("/api/v1/users/carol/repos")
    assert "Link" not in whole.headers and len(whole.json) == 5
    huge = await world.api.get("/api/v1/users/carol/repos?per_page=100000")
    assert huge.status == 200 and len(huge.json) == 5
