"""Forged and expired JWTs, tokens used beyond their scope or owner, brute force."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from tests.helpers import PASSWORD, basic, start_server
from tests.security.conftest import World, hostile_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")
KEY = "t" * 48  # tests.helpers.make_settings


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged(kind: str, user_id: int) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": str(user_id), "iat": now, "exp": now + 600, "typ": "access"}
    if kind == "alg-none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    if kind == "alg-none-upper":
        return f"{_b64({'alg': 'NONE', 'typ': 'JWT'})}.{_b64(claims)}.sig"
    if kind == "wrong-key":
        return jwt.encode(claims, "w" * 48, algorithm="HS256")
    if kind == "expired":
        return jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, KEY, algorithm="HS256")
    if kind == "no-exp":
        return jwt.encode({k: v for k, v in claims.items() if k != "exp"}, KEY, algorithm="HS256")
    if kind == "wrong-typ":
        return jwt.encode({**claims, "typ": "refresh"}, KEY, algorithm="HS256")
    if kind == "hs512":  # signed right, with an algorithm the server does not pin
        signing_input = f"{_b64({'alg': 'HS512', 'typ': 'JWT'})}.{_b64(claims)}"
        digest = hmac.new(KEY.encode(), signing_input.encode(), hashlib.sha512).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"
    if kind == "bad-sub":
        return jwt.encode({**claims, "sub": "../../1"}, KEY, algorithm="HS256")
    if kind == "tampered":
        header, _, signature = jwt.encode(
            {**claims, "sub": "999999"}, KEY, algorithm="HS256"
        ).split(".")
        return f"{header}.{_b64(claims)}.{signature}"
    raise AssertionError(kind)


KINDS = [
    "alg-none",
    "alg-none-upper",
    "wrong-key",
    "expired",
    "no-exp",
    "wrong-typ",
    "hs512",
    "bad-sub",
    "tampered",
]


@pytest.mark.parametrize("kind", KINDS)
async def test_forged_jwts_are_refused(shared: World, kind: str) -> None:
    token = forged(kind, shared.users["alice"].id)
    api = await shared.request("GET", "/api/v1/user", headers={"Authorization": f"Bearer {token}"})
    assert shared.safe(api).status == 401
    git = await shared.request(
        "GET",
        "/alice/priv.git/info/refs?service=git-upload-pack",
        headers=basic("alice", token),
    )
    assert shared.safe(git).status == 401
    await shared.intact()


async def test_tampered_payload_of_a_real_jwt(shared: World) -> None:
    body = json.dumps({"username": "bob", "password": PASSWORD})
    reply = await shared.request(
        "POST", "/api/v1/auth/token", data=body, headers={"Content-Type": "application/json"}
    )
    header, payload, signature = reply.json()["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(shared.users["alice"].id)  # become alice
    forged_token = f"{header}.{_b64(claims)}.{signature}"
    api = await shared.request(
        "GET", "/api/v1/user", headers={"Authorization": f"Bearer {forged_token}"}
    )
    assert shared.safe(api).status == 401


SCOPE_CASES = [
    ("alice-read", "POST", "/api/v1/user/repos", {"name": "made-by-read-token"}, (403,)),
    ("alice-read", "PATCH", "/api/v1/repos/alice/pub", {"description": "x"}, (403,)),
    ("alice-read", "DELETE", "/api/v1/repos/alice/pub", None, (403,)),
    ("alice-read", "POST", "/api/v1/user/tokens", {"name": "x", "scopes": ["admin"]}, (403,)),
    ("bob", "GET", "/api/v1/repos/alice/priv", None, (404,)),
    ("bob", "DELETE", "/api/v1/repos/alice/pub", None, (403, 404)),
    ("bob", "PATCH", "/api/v1/repos/alice/pub", {"private": True}, (403, 404)),
    ("bob", "PUT", "/api/v1/repos/alice/pub/collaborators/bob", {"permission": "admin"}, (403,)),
    ("bob", "POST", "/api/v1/admin/users", {"login": "eve", "password": "x" * 12}, (403,)),
    ("bob", "GET", "/api/v1/repos/alice/priv/contents/README.md", None, (404,)),
    ("bob", "GET", "/alice/priv.git/info/refs?service=git-upload-pack", None, (404,)),
    ("bob", "GET", "/alice/pub.git/info/refs?service=git-receive-pack", None, (403,)),
    ("alice-read", "GET", "/alice/pub.git/info/refs?service=git-receive-pack", None, (403,)),
]


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "expected"),
    SCOPE_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in SCOPE_CASES],
)
async def test_tokens_beyond_scope_or_owner(
    shared: World, who: str, method: str, path: str, body: Any, expected: tuple[int, ...]
) -> None:
    secret = shared.tokens[who]
    headers = {"Content-Type": "application/json"}
    if path.startswith("/api/"):
        headers["Authorization"] = f"token {secret}"
    else:
        headers.update(basic(who, secret))
    data = json.dumps(body) if body is not None else None
    reply = shared.safe(await shared.request(method, path, headers=headers, data=data))
    assert reply.status in expected, (reply.status, reply.text[:300])
    assert shared.repos["priv"].name not in reply.text or reply.status != 200
    await shared.intact()
    repos = shared.server.ctx.store
    assert await repos.repo_by_name("alice", "made-by-read-token") is None
    assert await repos.user_by_login("eve") is None


async def test_revoked_token_is_refused(shared: World) -> None:
    created = await shared.request(
        "POST",
        "/api/v1/user/tokens",
        data=json.dumps({"name": "temp", "scopes": ["read"]}),
        headers={"Content-Type": "application/json", **basic("bob", PASSWORD)},
    )
    assert created.status == 201, created.text
    info = created.json()
    secret = info["token"]
    ok = await shared.request("GET", "/api/v1/user", token=secret)
    assert ok.status == 200
    gone = await shared.request(
        "DELETE", f"/api/v1/user/tokens/{info['id']}", headers=basic("bob", PASSWORD)
    )
    assert gone.status == 204
    reply = shared.safe(await shared.request("GET", "/api/v1/user", token=secret))
    assert reply.status == 401


async def test_password_brute_force_is_slowed_not_the_owner(tmp_path: Path) -> None:
    server = await start_server(hostile_settings(tmp_path, auth_failure_limit="5/minute"))
    try:
        alice = await server.user("alice")
        await server.repo(alice, "priv", private=True)
        url = server.url + "/alice/priv.git/info/refs?service=git-upload-pack"
        statuses = []
        async with aiohttp.ClientSession() as attacker:
            for guess in range(20):
                async with attacker.get(url, headers=basic("alice", f"guess{guess}")) as resp:
                    statuses.append(resp.status)
                    assert "Traceback" not in await resp.text()
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        owner = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with (
            aiohttp.ClientSession(connector=owner) as http,
            http.get(url, headers=basic("alice", PASSWORD)) as resp,
        ):
            assert resp.status == 200
        assert await server.ctx.store.user_by_login("alice") is not None
    finally:
        await server.test_server.close()
