"""Smart HTTP at the HTTP level: only info/refs and the two services reach git, names
are validated before they touch the disk, and nothing of a repository directory is
ever served as a file (SECURITY-NOTES rules 1, 13)."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.e2e.smart_http_world import World, world
from tests.helpers import PASSWORD, basic

__all__ = ["world"]

UPLOAD = "application/x-git-upload-pack-request"
ADVERTISEMENT = "application/x-git-upload-pack-advertisement"


@pytest.fixture
async def http(world: World) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(world.server.url, auto_decompress=False) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str, **kw: object) -> tuple[int, bytes, dict]:
    async with http.get(path, allow_redirects=False, **kw) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.read(), dict(resp.headers)


ALICE = basic("alice", PASSWORD)


async def test_info_refs_advertisement_and_headers(world: World, http: aiohttp.ClientSession):
    status, body, headers = await get(http, "/alice/pub.git/info/refs?service=git-upload-pack")
    assert status == 200
    assert headers["Content-Type"] == ADVERTISEMENT
    assert headers["Cache-Control"].startswith("no-cache")
    assert body.startswith(b"001e# service=git-upload-pack\n0000")
    assert world.pub_sha.encode() in body
    assert len(headers["X-Request-ID"]) >= 16
    status, _, headers = await get(
        http,
        "/alice/pub/info/refs?service=git-upload-pack",
        headers={"X-Request-ID": "trace-me-123"},
    )
    assert status == 200 and headers["X-Request-ID"] == "trace-me-123"


async def test_protocol_v2_header_is_passed_on(world: World, http: aiohttp.ClientSession):
    _, body, _ = await get(
        http, "/alice/pub/info/refs?service=git-upload-pack", headers={"Git-Protocol": "version=2"}
    )
    assert b"version 2\n" in body and b"ls-refs" in body
    _, body, _ = await get(
        http, "/alice/pub/info/refs?service=git-upload-pack", headers={"Git-Protocol": "v=2;x y"}
    )
    assert b"version 2" not in body  # an invalid header is ignored, not passed to git


BAD_NAME_PATHS = [
    "/alice/..%2F..%2Fetc/info/refs?service=git-upload-pack",
    "/alice/..%2Fpriv.git/info/refs?service=git-upload-pack",
    "/alice/%2E%2E/info/refs?service=git-upload-pack",
    "/alice/.hidden/info/refs?service=git-upload-pack",
    "/alice/-rf/info/refs?service=git-upload-pack",
    "/alice/pub%00/info/refs?service=git-upload-pack",
    "/alice/pub%0A/info/refs?service=git-upload-pack",
    "/alice%0A/pub/info/refs?service=git-upload-pack",
    "/..%2Falice/pub/info/refs?service=git-upload-pack",
    "/al%5Cice/pub/info/refs?service=git-upload-pack",
    "/alice/pub.git.git/info/refs?service=git-upload-pack",
    "/-alice/pub/info/refs?service=git-upload-pack",
    "/" + "a" * 40 + "/pub/info/refs?service=git-upload-pack",
    "/alice/" + "p" * 101 + "/info/refs?service=git-upload-pack",
]


async def test_bad_names_are_not_found(world: World, http: aiohttp.ClientSession) -> None:
    """Checked on the decoded value the router hands over, before any disk access."""
    for path in BAD_NAME_PATHS:
        for auth in ({}, ALICE):
            status, body, headers = await get(http, path, headers=auth)
            assert status == 404, (path, status, body[:200])
            assert headers["Content-Type"].startswith("text/plain")
            assert b"# service=" not in body


REPOSITORY_FILES = [
    "config",
    "HEAD",
    "description",
    "packed-refs",
    "refs/heads/main",
    "info/refs",
    "info/refs?service=git-upload-archive",
    "info/refs?service=upload-pack",
    "info/refs?service=",
    "info/packs",
    "objects/info/packs",
    "objects/info/alternates",
    "objects/pack/",
    "hooks/post-receive",
    "git-upload-archive",
    "..%2F..%2Fapp.db",
    "..%2F..%2Fsecret_key",
]


async def test_nothing_from_the_repository_directory(
    world: World, http: aiohttp.ClientSession
) -> None:
    """Dumb HTTP, upload-archive and every file of the repository: 404 for everyone."""
    for tail in REPOSITORY_FILES:
        for auth in ({}, ALICE):
            for repo in ("pub", "pub.git", "priv"):
                status, body, _ = await get(http, f"/alice/{repo}/{tail}", headers=auth)
                assert status == 404, (repo, tail, status, body[:200])
                assert b"[core]" not in body and b"ref: refs/heads" not in body


async def test_loose_object_path_is_not_served(world: World, http: aiohttp.ClientSession):
    sha = world.pub_sha
    for tail in (f"objects/{sha[:2]}/{sha[2:]}", f"objects/{sha[:2]}"):
        status, _, _ = await get(http, f"/alice/pub.git/{tail}")
        assert status == 404


async def test_other_methods_not_served(world: World, http: aiohttp.ClientSession) -> None:
    for method in ("PUT", "DELETE", "PATCH", "HEAD", "PROPFIND", "MKCOL"):
        for tail in ("info/refs?service=git-upload-pack", "git-upload-pack", "git-receive-pack"):
            async with http.request(method, f"/alice/pub.git/{tail}", headers=ALICE) as resp:
                assert resp.status in (404, 405), (method, tail)


async def test_get_of_service_endpoint_not_served(world: World, http: aiohttp.ClientSession):
    status, _, _ = await get(http, "/alice/pub.git/git-upload-pack")
    assert status == 404


async def test_wrong_content_type_is_415(world: World, http: aiohttp.ClientSession) -> None:
    for content_type in ("text/plain", "application/x-git-receive-pack-request", ""):
        async with http.post(
            "/alice/pub.git/git-upload-pack",
            data=b"0000",
            headers={"Content-Type": content_type},
        ) as resp:
            assert resp.status == 415, content_type
            assert resp.content_type == "text/plain"
    async with http.post(
        "/alice/pub.git/git-receive-pack",
        data=b"0000",
        headers={"Content-Type": UPLOAD, **ALICE},
    ) as resp:
        assert resp.status == 415


async def test_unknown_content_encoding_is_415(world: World, http: aiohttp.ClientSession):
    async with http.post(
        "/alice/pub.git/git-upload-pack",
        data=b"0000",
        headers={"Content-Type": UPLOAD, "Content-Encoding": "br"},
    ) as resp:
        assert resp.status == 415


async def test_access_rules_on_every_endpoint(world: World, http: aiohttp.ClientSession):
    """info/refs for both services and both POSTs follow the same 401/404/403 rules."""
    rita = basic("rita", PASSWORD)
    mallory = basic("mallory", PASSWORD)
    cases = [
        # (repo, service, auth, expected)
        ("priv", "git-upload-pack", {}, 401),
        ("priv", "git-receive-pack", {}, 401),
        ("nothing", "git-upload-pack", {}, 401),
        ("priv", "git-upload-pack", mallory, 404),
        ("priv", "git-receive-pack", mallory, 404),
        ("nothing", "git-upload-pack", mallory, 404),
        ("priv", "git-upload-pack", rita, 200),
        ("priv", "git-receive-pack", rita, 403),
        ("pub", "git-upload-pack", {}, 200),
        ("pub", "git-receive-pack", {}, 401),
        ("pub", "git-receive-pack", mallory, 403),
        ("pub", "git-receive-pack", ALICE, 200),
    ]
    for repo, service, auth, expected in cases:
        status, _, headers = await get(
            http, f"/alice/{repo}.git/info/refs?service={service}", headers=auth
        )
        assert status == expected, (repo, service, auth, status)
        if expected == 401:
            assert headers["WWW-Authenticate"].startswith("Basic realm=")
        if expected == 200:
            continue
        async with http.post(
            f"/alice/{repo}.git/{service}",
            data=b"0000",
            headers={"Content-Type": f"application/x-{service}-request", **auth},
        ) as resp:
            assert resp.status == expected, (repo, service, auth, "POST")


async def test_bad_credentials_are_401_even_on_public(world: World, http: aiohttp.ClientSession):
    for auth in (
        basic("alice", "wrong-password"),
        basic("alice", "ghp_" + "x" * 43),
        {"Authorization": "Bearer ghp_" + "y" * 43},
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest x"},
    ):
        status, _, headers = await get(
            http, "/alice/pub.git/info/refs?service=git-upload-pack", headers=auth
        )
        assert status == 401, auth
        assert "WWW-Authenticate" in headers


async def test_bearer_token_and_jwt_on_git_paths(world: World, http: aiohttp.ClientSession):
    from app.auth import jwt as jwt_auth

    token = await world.server.token(world.alice, "read")
    jwt, _ = jwt_auth.issue(world.server.ctx.secret_key, world.alice.id, 600)
    for auth in (f"Bearer {token}", f"Bearer {jwt}", f"token {token}"):
        status, _, _ = await get(
            http,
            "/alice/priv.git/info/refs?service=git-upload-pack",
            headers={"Authorization": auth},
        )
        assert status == 200, auth


async def test_gzip_request_body_reaches_git_compressed(world: World, http: aiohttp.ClientSession):
    """A gzip body is inflated once (by http-backend), never twice or not at all."""
    want = f"0032want {world.pub_sha}\n00000009done\n".encode()
    async with http.post(
        "/alice/pub.git/git-upload-pack",
        data=gzip.compress(want),
        headers={"Content-Type": UPLOAD, "Content-Encoding": "gzip"},
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/x-git-upload-pack-result"
        body = await resp.read()
    assert body.startswith(b"0008NAK\n")
    assert b"PACK" in body


async def test_plain_text_errors_on_git_paths(world: World, http: aiohttp.ClientSession):
    status, body, headers = await get(http, "/alice/priv.git/info/refs?service=git-upload-pack")
    assert status == 401
    assert headers["Content-Type"].startswith("text/plain")
    assert body.endswith(b"\n") and not body.startswith(b"{")
    assert headers["X-Request-ID"]


async def test_one_access_log_line_per_request(
    world: World, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    token = await world.server.token(world.alice, "read")
    path = "/alice/priv.git/info/refs?service=git-upload-pack&access_token=" + token
    status, _, headers = await get(
        http, path, headers={**basic("alice", PASSWORD), "X-Request-ID": "one-line-1"}
    )
    assert status == 200
    for _ in range(200):  # the line is written as the handler returns, just after the body
        if lines := [r for r in caplog.records if r.name == "app.access"]:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    lines = [r for r in caplog.records if r.name == "app.access"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.method, line.path, line.status) == ("GET", "/alice/priv.git/info/refs", 200)  # type: ignore[attr-defined]
    assert line.request_id == headers["X-Request-ID"] == "one-line-1"  # type: ignore[attr-defined]
    assert line.user == "alice"  # type: ignore[attr-defined]
    text = caplog.text
    assert token not in text and PASSWORD not in text
