"""Personal access tokens over the API: the secret once, scopes enforced, delete."""

from __future__ import annotations

from tests.api.resources_world import World, world
from tests.helpers import basic

__all__ = ["world"]
PASSWORD = "correct-horse-battery"


async def test_create_list_use_delete(world: World) -> None:
    login = basic("carol", PASSWORD)
    made = await world.api.call(
        "POST",
        "/api/v1/user/tokens",
        headers=login,
        json_body={"name": "ci", "scopes": ["read", "write"]},
    )
    assert made.status == 201, made.text
    secret = made.json["token"]
    assert secret.startswith("ghp_") and made.json["token_last_eight"] == secret[-8:]
    assert made.json["scopes"] == ["read", "write"]
    assert made.json["url"] == f"{world.server.url}/api/v1/user/tokens/{made.json['id']}"
    listed = await world.api.get("/api/v1/user/tokens", headers=login)
    assert [t["name"] for t in listed.json] == ["test", "ci"]
    assert all("token" not in t for t in listed.json)  # never shown again
    assert secret not in listed.text
    me = await world.api.get("/api/v1/user", token=secret)
    assert me.json["login"] == "carol"
    # the new token writes (create a repository) but may not manage tokens
    repo = await world.api.call(
        "POST", "/api/v1/user/repos", token=secret, json_body={"name": "by-token"}
    )
    assert repo.status == 201
    escalate = await world.api.call(
        "POST", "/api/v1/user/tokens", token=secret, json_body={"scopes": ["admin"]}
    )
    assert escalate.status == 403
    gone = await world.api.call("DELETE", f"/api/v1/user/tokens/{made.json['id']}", headers=login)
    assert gone.status == 204
    assert (await world.api.get("/api/v1/user", token=secret)).status == 401
    again = await world.api.call("DELETE", f"/api/v1/user/tokens/{made.json['id']}", headers=login)
    assert again.status == 404


async def test_read_scope_token_is_read_only(world: World) -> None:
    made = await world.api.call(
        "POST",
        "/api/v1/user/tokens",
        token=world.tokens["alice"],
        json_body={"note": "reader", "scopes": "read"},
    )
    secret = made.json["token"]
    assert made.json["name"] == "reader"
    # it reads the private repository...
    assert (await world.api.get("/api/v1/repos/alice/secret", token=secret)).status == 200
    # ...but cannot change or delete it
    patch = await world.api.call(
        "PATCH", "/api/v1/repos/alice/secret", token=secret, json_body={"private": False}
    )
    assert patch.status == 403
    delete = await world.api.call("DELETE", "/api/v1/repos/alice/secret", token=secret)
    assert delete.status == 403


async def test_someone_elses_token_is_not_found(world: World) -> None:
    tokens = await world.api.get("/api/v1/user/tokens", token=world.tokens["alice"])
    alice_token = tokens.json[0]["id"]
    reply = await world.api.call(
        "DELETE", f"/api/v1/user/tokens/{alice_token}", token=world.tokens["bob"]
    )
    assert reply.status == 404
    assert (await world.api.get("/api/v1/user", token=world.tokens["alice"])).status == 200
    for bad in ("abc", "-1", str(2**64), "1.5"):
        reply = await world.api.call(
            "DELETE", f"/api/v1/user/tokens/{bad}", token=world.tokens["bob"]
        )
        assert reply.status in (404, 405), (bad, reply.status)


async def test_bad_token_bodies(world: World) -> None:
    cases = [
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "scopes": []},
        {"name": "", "scopes": ["read"]},
        {"name": "x" * 101},
        {"name": 5},
        {"name": "x", "scopes": "read,sudo"},
        {"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "x", "expires_at": "yesterday"},
    ]
    for body in cases:
        reply = await world.api.call(
            "POST", "/api/v1/user/tokens", token=world.tokens["alice"], json_body=body
        )
        assert reply.status == 422, (body, reply.text)
        assert reply.json["errors"], body
    expiring = await world.api.call(
        "POST",
        "/api/v1/user/tokens",
        token=world.tokens["alice"],
        json_body={"name": "soon", "expires_at": "2999-01-01T00:00:00+02:00"},
    )
    assert expiring.status == 201
    assert expiring.json["expires_at"] == "2998-12-31T22:00:00Z"
    assert (await world.api.get("/api/v1/user/tokens")).status == 401
