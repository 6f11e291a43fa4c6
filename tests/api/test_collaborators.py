"""Collaborators: GitHub's role names, 201/204 answers, access that follows the change."""

from __future__ import annotations

from tests.api.resources_world import World, world

__all__ = ["world"]
BASE = "/api/v1/repos/alice/secret/collaborators"


async def test_list_and_check(world: World) -> None:
    reply = await world.api.get(BASE, token=world.tokens["alice"])
    assert reply.status == 200
    assert [c["login"] for c in reply.json] == ["bob"]
    assert reply.json[0]["role_name"] == "read"
    assert reply.json[0]["permissions"]["pull"] is True
    assert reply.json[0]["permissions"]["push"] is False
    assert (await world.api.get(f"{BASE}/bob", token=world.tokens["alice"])).status == 204
    assert (await world.api.get(f"{BASE}/carol", token=world.tokens["alice"])).status == 404
    assert (await world.api.get(f"{BASE}/nobody", token=world.tokens["alice"])).status == 404
    # bob only reads: listing needs push access, asking about himself is fine
    assert (await world.api.get(BASE, token=world.tokens["bob"])).status == 403
    assert (await world.api.get(f"{BASE}/bob", token=world.tokens["bob"])).status == 204


async def test_put_new_then_update(world: World) -> None:
    path = "/api/v1/repos/alice/public/collaborators/carol"
    added = await world.api.call(
        "PUT", path, token=world.tokens["alice"], json_body={"permission": "push"}
    )
    assert added.status == 201, added.text
    assert added.json["invitee"]["login"] == "carol"
    assert added.json["permissions"] == "write"
    assert added.json["repository"]["full_name"] == "alice/public"
    changed = await world.api.call(
        "PUT", path, token=world.tokens["alice"], json_body={"permission": "admin"}
    )
    assert changed.status == 204 and changed.text == ""
    permission = await world.api.get(f"{path}/permission", token=world.tokens["alice"])
    assert permission.json["permission"] == "admin"
    assert permission.json["user"]["login"] == "carol"
    # carol is admin now: she may change the repository
    patched = await world.api.call(
        "PATCH",
        "/api/v1/repos/alice/public",
        token=world.tokens["carol"],
        json_body={"description": "by carol"},
    )
    assert patched.status == 200


async def test_role_names(world: World) -> None:
    path = "/api/v1/repos/alice/public/collaborators/carol"
    expected = {
        "pull": "read",
        "triage": "read",
        "read": "read",
        "push": "write",
        "maintain": "write",
        "write": "write",
        "admin": "admin",
    }
    for given, stored in expected.items():
        reply = await world.api.call(
            "PUT", path, token=world.tokens["alice"], json_body={"permission": given}
        )
        assert reply.status in (201, 204), reply.text
        permission = await world.api.get(f"{path}/permission", token=world.tokens["alice"])
        assert permission.json["permission"] == stored, given
    default = await world.api.call("PUT", path, token=world.tokens["alice"])
    assert default.status == 204
    permission = await world.api.get(f"{path}/permission", token=world.tokens["alice"])
    assert permission.json["permission"] == "write"  # GitHub's default is push
    for bad in ("owner", "", 3, None, ["admin"]):
        reply = await world.api.call(
            "PUT", path, token=world.tokens["alice"], json_body={"permission": bad}
        )
        assert reply.status == 422, bad
        assert reply.json["errors"][0]["field"] == "permission"


async def test_put_refusals(world: World) -> None:
    owner = await world.api.call(
        "PUT", "/api/v1/repos/alice/public/collaborators/alice", token=world.tokens["alice"]
    )
    assert owner.status == 422
    missing = await world.api.call(
        "PUT", "/api/v1/repos/alice/public/collaborators/nobody", token=world.tokens["alice"]
    )
    assert missing.status == 404
    by_reader = await world.api.call(
        "PUT", f"{BASE}/carol", token=world.tokens["bob"], json_body={"permission": "admin"}
    )
    assert by_reader.status == 403
    by_stranger = await world.api.call(
        "PUT", f"{BASE}/carol", token=world.tokens["carol"], json_body={"permission": "admin"}
    )
    assert by_stranger.status == 404
    anonymous = await world.api.call("PUT", f"{BASE}/carol", json_body={"permission": "admin"})
    assert anonymous.status == 404


async def test_remove_takes_access_away(world: World) -> None:
    assert (
        await world.api.get("/api/v1/repos/alice/secret", token=world.tokens["bob"])
    ).status == 200
    removed = await world.api.call("DELETE", f"{BASE}/bob", token=world.tokens["alice"])
    assert removed.status == 204
    assert (
        await world.api.get("/api/v1/repos/alice/secret", token=world.tokens["bob"])
    ).status == 404
    again = await world.api.call("DELETE", f"{BASE}/bob", token=world.tokens["alice"])
    assert again.status == 204  # not a collaborator (any more) is not an error
    himself = await world.api.call("DELETE", f"{BASE}/bob", token=world.tokens["bob"])
    assert himself.status == 404  # bob can no longer see the repository at all
    listed = await world.api.get("/api/v1/user/repos", token=world.tokens["bob"])
    assert listed.json == []


async def test_collaborator_leaves_by_himself(world: World) -> None:
    reply = await world.api.call("DELETE", f"{BASE}/bob", token=world.tokens["bob"])
    assert reply.status == 204
    assert (
        await world.api.get("/api/v1/repos/alice/secret", token=world.tokens["bob"])
    ).status == 404


async def test_permission_endpoint(world: World) -> None:
    def url(login: str, repo: str = "secret") -> str:
        return f"/api/v1/repos/alice/{repo}/collaborators/{login}/permission"

    answers = {}
    for login in ("alice", "bob", "carol", "root"):
        reply = await world.api.get(url(login), token=world.tokens["alice"])
        assert reply.status == 200, reply.text
        answers[login] = reply.json["permission"]
    assert answers == {"alice": "admin", "bob": "read", "carol": "none", "root": "admin"}
    public = await world.api.get(url("carol", "public"), token=world.tokens["alice"])
    assert public.json["permission"] == "read"
    assert (await world.api.get(url("nobody"), token=world.tokens["alice"])).status == 404
    own = await world.api.get(url("bob"), token=world.tokens["bob"])
    assert own.status == 200 and own.json["permission"] == "read"
    assert (await world.api.get(url("alice"), token=world.tokens["bob"])).status == 403
