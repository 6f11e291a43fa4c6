"""Path traversal in every route: encoded, doubled, backslashes, NUL, absolute, and case
variants, against git and API routes. Each must answer below 500 with nothing from disk."""

from __future__ import annotations

import pytest

from tests.security.conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYLOADS = {
    "encoded": "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "encoded-dots": "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "double-encoded": "..%252F..%252F..%252Fetc%252Fpasswd",
    "backslash": "..%5C..%5C..%5Cetc%5Cpasswd",
    "nul": "pub%00.git",
    "absolute": "%2Fetc%2Fpasswd",
    "dots-doubled": "....%2F%2F....%2F%2Fetc%2Fpasswd",
    "crlf": "pub%0d%0aX-Injected:%20yes",
}
ROUTES = {
    "git-refs-repo": "/alice/{x}/info/refs?service=git-upload-pack",
    "git-refs-owner": "/{x}/pub/info/refs?service=git-upload-pack",
    "api-repo": "/api/v1/repos/alice/{x}",
    "api-contents": "/api/v1/repos/alice/pub/contents/{x}",
    "api-commit": "/api/v1/repos/alice/pub/commits/{x}",
    "api-tree": "/api/v1/repos/alice/pub/git/trees/{x}",
    "api-user": "/api/v1/users/{x}",
}


@pytest.mark.parametrize("route", list(ROUTES.values()), ids=list(ROUTES))
@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
async def test_traversal_is_refused(shared: World, route: str, payload: str) -> None:
    reply = shared.safe(await shared.request("GET", route.format(x=payload)))
    assert reply.status in (400, 401, 404, 422), (reply.status, reply.text[:300])
    assert "X-Injected" not in reply.headers
    await shared.intact()


@pytest.mark.parametrize(
    "path",
    [
        "/ALICE/PUB.git/info/refs?service=git-upload-pack",
        "/Alice/Pub/info/refs?service=git-upload-pack",
        "/api/v1/repos/ALICE/PUB",
    ],
)
async def test_case_variants_name_the_same_repository(shared: World, path: str) -> None:
    reply = shared.safe(await shared.request("GET", path))
    assert reply.status == 200
    if path.startswith("/api/"):
        assert reply.json()["full_name"] == "alice/pub"
    else:
        assert shared.head.encode() in reply.body


@pytest.mark.parametrize(
    "path",
    [
        "/alice/priv.git/../pub.git/info/refs?service=git-upload-pack",
        "/alice/pub.git/..%2Fpriv.git/info/refs?service=git-upload-pack",
        "/alice/PRIV.git/info/refs?service=git-upload-pack",
    ],
)
async def test_private_repository_not_reached_by_a_detour(shared: World, path: str) -> None:
    reply = shared.safe(await shared.request("GET", path))
    if reply.status == 200:  # the client or router collapsed `..` onto the public repo
        assert b"refs/heads/main" in reply.body
        priv_refs = shared.refs["priv"].split()[0]
        assert priv_refs.encode() not in reply.body
    else:
        assert reply.status in (401, 404)
