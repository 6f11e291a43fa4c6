"""Users: /user, /users/{name}, /users (since paging), POST /admin/users."""

from __future__ import annotations

import re

from tests.api.resources_world import World, world
from tests.helpers import basic

__all__ = ["world"]
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


async def test_authenticated_user(world: World) -> None:
    reply = await world.api.get("/api/v1/user", token=world.tokens["alice"])
    assert reply.status == 200
    me = reply.json
    assert me["login"] == "alice" and me["id"] == world.users["alice"].id
    assert me["type"] == "User" and me["site_admin"] is False
    assert me["email"] == "alice@example.com"
    assert me["url"] == f"{world.server.url}/api/v1/users/alice"
    assert me["repos_url"] == f"{world.server.url}/api/v1/users/alice/repos"
    assert me["public_repos"] == 1
    assert TIMESTAMP.match(me["created_at"])
    assert (await world.api.get("/api/v1/user")).status == 401


async def test_every_credential_form(world: World) -> None:
    """token T, Bearer T, Bearer JWT and Basic (password or token) all identify the caller."""
    jwt = (
        await world.api.call(
            "POST",
            "/api/v1/auth/token",
            json_body={"username": "alice", "password": "correct-horse-battery"},
        )
    ).json["token"]
    token = world.tokens["alice"]
    forms = [
        {"Authorization": f"token {token}"},
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {jwt}"},
        basic("alice", "correct-horse-battery"),
        basic("anything", token),
    ]
    for headers in forms:
        reply = await world.api.get("/api/v1/user", headers=headers)
        assert reply.status == 200, headers
        assert reply.json["login"] == "alice"
    for bad in ("token nope", "Bearer ghp_" + "x" * 40, "Basic !!!", "Digest x"):
        reply = await world.api.get("/api/v1/user", headers={"Authorization": bad})
        assert reply.status == 401, bad
        assert reply.json["message"] == "Bad credentials"


async def test_get_user(world: World) -> None:
    reply = await world.api.get("/api/v1/users/BOB")
    assert reply.status == 200
    assert reply.json["login"] == "bob"
    assert reply.json["email"] is None  # only for the user themself and admins
    assert reply.json["public_repos"] == 0
    by_admin = await world.api.get("/api/v1/users/bob", token=world.tokens["root"])
    assert by_admin.json["email"] == "bob@example.com"
    for name in ("nobody", "-bad", "a" * 40, "x%00y", "..", "a.b"):
        assert (await world.api.get(f"/api/v1/users/{name}")).status == 404, name


async def test_list_users_since(world: World) -> None:
    everyone = await world.api.get("/api/v1/users")
    assert [u["login"] for u in everyone.json] == ["alice", "bob", "carol", "root"]
    assert "Link" not in everyone.headers
    first = await world.api.get("/api/v1/users?per_page=2")
    assert [u["login"] for u in first.json] == ["alice", "bob"]
    bob_id = world.users["bob"].id
    expected = f'<{world.server.url}/api/v1/users?since={bob_id}&per_page=2>; rel="next"'
    assert first.headers["Link"] == expected
    rest = await world.api.get(f"/api/v1/users?since={bob_id}&per_page=2")
    assert [u["login"] for u in rest.json] == ["carol", "root"]
    assert "Link" not in rest.headers
    for bad in ("since=-1", "since=abc", "per_page=0", "per_page=x", f"since={2**64}"):
        reply = await world.api.get(f"/api/v1/users?{bad}")
        assert reply.status == 422, bad
    huge = await world.api.get("/api/v1/users?per_page=99999999999999999999")
    assert huge.status == 200 and len(huge.json) == 4


async def test_admin_creates_user(world: World) -> None:
    body = {"login": "dave", "email": "dave@example.com", "password": "long-enough-pw"}
    made = await world.api.call(
        "POST", "/api/v1/admin/users", token=world.tokens["root"], json_body=body
    )
    assert made.status == 201, made.text
    assert made.json["login"] == "dave" and made.json["site_admin"] is False
    login = await world.api.get("/api/v1/user", headers=basic("dave", "long-enough-pw"))
    assert login.status == 200
    again = await world.api.call(
        "POST", "/api/v1/admin/users", token=world.tokens["root"], json_body={"login": "DAVE"}
    )
    assert again.status == 422 and again.json["errors"][0]["code"] == "already_exists"
    for bad in ({"login": "-x"}, {"login": 5}, {}, {"login": "ok", "password": "short"}):
        reply = await world.api.call(
            "POST", "/api/v1/admin/users", token=world.tokens["root"], json_body=bad
        )
        assert reply.status == 422, bad
    refused = await world.api.call(
        "POST", "/api/v1/admin/users", token=world.tokens["alice"], json_body={"login": "eve"}
    )
    assert refused.status == 403
    anonymous = await world.api.call("POST", "/api/v1/admin/users", json_body={"login": "eve"})
    assert anonymous.status == 401
    assert await world.server.ctx.store.user_by_login("eve") is None
