"""Files of a repository directory are never served over HTTP (dumb HTTP, config, HEAD,
objects, hooks, archives), whoever asks (SECURITY-NOTES rule 13)."""

from __future__ import annotations

import pytest

from tests.security.conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="module")

PATHS = [
    ("GET", "/alice/pub.git/config"),
    ("GET", "/alice/pub.git/HEAD"),
    ("GET", "/alice/pub.git/description"),
    ("GET", "/alice/pub.git/packed-refs"),
    ("GET", "/alice/pub.git/refs/heads/main"),
    ("GET", "/alice/pub.git/info/refs"),
    ("GET", "/alice/pub.git/objects/info/packs"),
    ("GET", "/alice/pub.git/objects/{sha2}/{sha38}"),
    ("GET", "/alice/pub.git/hooks/pre-receive"),
    ("GET", "/alice/pub.git/info/refs?service=git-upload-archive"),
    ("POST", "/alice/pub.git/git-upload-archive"),
    ("GET", "/alice/pub/config"),
    ("GET", "/alice/priv.git/HEAD"),
    ("GET", "/alice/pub.git/info/refs?service=git-upload-pack%00"),
]


@pytest.mark.parametrize(("method", "path"), PATHS, ids=[p for _, p in PATHS])
@pytest.mark.parametrize("who", ["anonymous", "owner"])
async def test_repository_files_not_served(shared: World, method: str, path: str, who: str) -> None:
    path = path.format(sha2=shared.head[:2], sha38=shared.head[2:])
    token = shared.tokens["alice"] if who == "owner" else None
    reply = shared.safe(await shared.request(method, path, token=token))
    assert reply.status in (401, 403, 404, 405), (reply.status, reply.text[:200])
    assert b"ref: refs/heads" not in reply.body
    assert b"PACK" not in reply.body[:64]
    await shared.intact()
