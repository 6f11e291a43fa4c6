"""POST /auth/token (JWT), and private repositories staying invisible everywhere."""

from __future__ import annotations

import re
import time

import jwt as pyjwt

from tests.api.resources_world import World, world

__all__ = ["world"]
PASSWORD = "correct-horse-battery"


async def test_jwt_login(world: World) -> None:
    reply = await world.api.call(
        "POST", "/api/v1/auth/token", json_body={"username": "Alice", "password": PASSWORD}
    )
    assert reply.status == 200, reply.text
    body = reply.json
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", body["expires_at"])
    claims = pyjwt.decode(body["token"], options={"verify_signature": False})
    assert claims["exp"] > time.time()
    me = await world.api.get("/api/v1/user", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json["login"] == "alice"


async def test_jwt_login_refusals(world: World) -> None:
    wrong = await world.api.call(
        "POST", "/api/v1/auth/token", json_body={"username": "alice", "password": "nope-nope"}
    )
    assert wrong.status == 401 and wrong.json["message"] == "Bad credentials"
    nobody = await world.api.call(
        "POST", "/api/v1/auth/token", json_body={"username": "nobody", "password": PASSWORD}
    )
    assert nobody.status == 401
    # a personal access token is not a password: it cannot be traded for a (wider) JWT
    token = await world.api.call(
        "POST",
        "/api/v1/auth/token",
        json_body={"username": "alice", "password": world.tokens["alice"]},
    )
    assert token.status == 401
    for body in ({}, {"username": "alice"}, {"username": 1, "password": "x"}):
        reply = await world.api.call("POST", "/api/v1/auth/token", json_body=body)
        assert reply.status == 422, body
    malformed = await world.api.call("POST", "/api/v1/auth/token", data="{not json")
    assert malformed.status == 400


async def test_forged_jwt_refused(world: World) -> None:
    claims = {"sub": "1", "iat": int(time.time()), "exp": int(time.time()) + 60, "typ": "access"}
    for forged in (
        pyjwt.encode(claims, "w" * 48, algorithm="HS256"),
        pyjwt.encode(claims, None, algorithm="none"),
    ):
        reply = await world.api.get("/api/v1/user", headers={"Authorization": f"Bearer {forged}"})
        assert reply.status == 401


async def test_private_repository_invisible_in_every_listing(world: World) -> None:
    for who in (None, "carol"):
        token = world.tokens[who] if who else None
        for path in (
            "/api/v1/users/alice/repos",
            "/api/v1/users/alice/repos?type=all",
            "/api/v1/users/bob/repos?type=member",
            "/api/v1/user/repos",
        ):
            reply = await world.api.get(path, token=token)
            if who is None and path == "/api/v1/user/repos":
                assert reply.status == 401
                continue
            assert reply.status == 200, (who, path)
            assert "secret" not in reply.text, (who, path)
        user = await world.api.get("/api/v1/users/alice", token=token)
        assert user.json["public_repos"] == 1
    bob = await world.api.get("/api/v1/users/bob/repos?type=member", token=world.tokens["bob"])
    assert [r["full_name"] for r in bob.json] == ["alice/secret"]


async def test_private_repository_invisible_in_every_route(world: World) -> None:
    """Every route naming a repository answers for alice/secret exactly as for a repository
    that does not exist, to anonymous callers and to a signed-in stranger."""
    doc = (await world.api.get("/api/v1/openapi.json")).json
    values = {
        "username": "bob",
        "branch": "main",
        "ref": "main",
        "sha": "main",
        "path": "README.md",
        "basehead": "main...feature",
        "name": "main.tar.gz",
    }
    checked = 0
    for path, ops in doc["paths"].items():
        if "{owner}/{repo}" not in path:
            continue
        for method in ops:
            answers = {}
            for repo in ("secret", "does-not-exist"):
                url = re.sub(
                    r"\{([^}]+)\}",
                    lambda m, repo=repo: {"owner": "alice", "repo": repo, **values}[m.group(1)],
                    path,
                )
                for who in (None, "carol"):
                    token = world.tokens[who] if who else None
                    reply = await world.api.call(method.upper(), url, token=token, json_body={})
                    message = reply.json.get("message") if reply.text else None
                    answers[(repo, who)] = (reply.status, message)
            for who in (None, "carol"):
                assert answers[("secret", who)] == answers[("does-not-exist", who)], (
                    method,
                    path,
                    who,
                    answers,
                )
            assert answers[("secret", "carol")][0] == 404, (method, path, answers)
            checked += 1
    assert checked >= 10
    # and it is all still there for alice
    assert (
        await world.api.get("/api/v1/repos/alice/secret", token=world.tokens["alice"])
    ).status == 200
