"""Access and hostile input on every repository-reading route: a private repository is
invisible (404 for anonymous callers and strangers alike, as in the rest of the API), bad
values are 422s naming the field (never a 500, never an option to git), and the pooled
readers survive all of it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from app.services.archives import _sign
from tests.api.browse_world import World, build_world
from tests.helpers import PASSWORD, Git, Server

ROUTES = [
    "/branches",
    "/branches/main",
    "/branches/feature/x",
    "/tags",
    "/commits",
    "/commits?sha=main&path=README.md",
    "/commits/main",
    "/compare/v0.1...main",
    "/contents",
    "/contents/README.md",
    "/contents/src",
    "/git/trees/main",
    "/git/trees/main?recursive=1",
    "/tarball/main",
    "/zipball",
]


@pytest.fixture
async def world(server: Server, git: Git, tmp_path: Path) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        yield await build_world(server, git, tmp_path, session)


async def test_private_repository_is_invisible_on_every_route(world: World) -> None:
    for route in ROUTES:
        owner = await world.get(f"/repos/alice/priv{route}")
        assert owner.status in (200, 302), (route, owner.status, owner.body)
        anonymous = await world.get(f"/repos/alice/priv{route}", who=None)
        assert anonymous.status == 404, route
        stranger = await world.get(f"/repos/alice/priv{route}", who="bob")
        assert stranger.status == 404, route
        assert stranger.json["message"] == "Not Found"
        missing = await world.get(f"/repos/alice/nothing{route}", who="bob")
        assert missing.status == 404 and missing.json["message"] == "Not Found", route
        public = await world.get(f"/repos/alice/pub{route}", who=None)
        assert public.status in (200, 302), route


async def test_private_archive_needs_signature_or_access(world: World) -> None:
    sha = world.shas["c7"]
    unsigned = f"/repos/alice/priv/archive/{sha}.tar.gz"
    assert (await world.get(unsigned, who=None)).status == 404
    assert (await world.get(unsigned, who="bob")).status == 404
    assert (await world.get(unsigned)).status == 200  # the owner's own credentials
    link = (await world.get("/repos/alice/priv/tarball/main")).headers["Location"]
    assert (await world.get(link, who=None)).status == 200
    query = parse_qs(urlsplit(link).query)
    expires, signature = query["expires"][0], query["signature"][0]
    tampered = f"{unsigned}?expires={expires}&signature={'0' * len(signature)}"
    assert (await world.get(tampered, who=None)).status == 404
    other_sha = f"/repos/alice/priv/archive/{world.shas['c1']}.tar.gz"
    assert (
        await world.get(f"{other_sha}?expires={expires}&signature={signature}", who=None)
    ).status == 404
    as_zip = f"/repos/alice/priv/archive/{sha}.zip?expires={expires}&signature={signature}"
    assert (await world.get(as_zip, who=None)).status == 404
    old = int(time.time()) - 10
    repo = await world.server.ctx.store.repo_by_name("alice", "priv")
    assert repo is not None
    expired_sig = _sign(world.server.ctx.secret_key, repo.id, sha, "tar.gz", old)
    expired = f"{unsigned}?expires={old}&signature={expired_sig}"
    assert (await world.get(expired, who=None)).status == 404
    # A link signed for the public twin does not open the private one.
    pub_link = (await world.get("/repos/alice/pub/tarball/main")).headers["Location"]
    stolen = pub_link.replace("/alice/pub/", "/alice/priv/")
    assert (await world.get(stolen, who=None)).status == 404


BAD = [
    # (route, field named in the 422)
    ("/branches/-x", "branch"),
    ("/branches/a..b", "branch"),
    ("/commits?sha=-x", "sha"),
    ("/commits?sha=--output=/tmp/pwned", "sha"),
    ("/commits?sha=main%00x", "sha"),
    ("/commits?path=../etc/passwd", "path"),
    ("/commits?path=a%00b", "path"),
    ("/commits?path=a%0Ab", "path"),
    ("/commits?since=yesterday", "since"),
    ("/commits?until=2024-13-45", "until"),
    ("/commits?author=a%00b", "author"),
    ("/commits?per_page=abc", "per_page"),
    ("/commits?per_page=-1", "per_page"),
    ("/commits?page=0", "page"),
    ("/commits?page=x", "page"),
    ("/commits/-x", "ref"),
    ("/commits/--upload-pack=touch%20x", "ref"),
    ("/commits/main..x", "ref"),
    ("/commits/HEAD:../x", "ref"),
    ("/commits/a%00b", "ref"),
    ("/compare/-x...main", "base"),
    ("/compare/main...--output=x", "head"),
    ("/compare/main", "basehead"),
    ("/compare/main...main?per_page=x", "per_page"),
    ("/contents/%2E%2E/%2E%2E/etc/passwd", "path"),
    ("/contents/..%2F..%2Fetc%2Fpasswd", "path"),
    ("/contents/src/%2E%2E/README.md", "path"),
    ("/contents/a%00b", "path"),
    ("/contents/a%0Ab", "path"),
    ("/contents/README.md?ref=-x", "ref"),
    ("/contents/README.md?ref=HEAD:../x", "ref"),
    ("/contents/README.md?ref=a%00b", "ref"),
    ("/git/trees/-x", "tree_sha"),
    ("/git/trees/HEAD:../x", "tree_sha"),
    ("/git/trees/main?recursive=%00", "recursive"),
    ("/tarball/-x", "ref"),
    ("/zipball/a..b", "ref"),
    ("/tarball/--format=x", "ref"),
]


async def test_bad_input_is_422_naming_the_field(world: World) -> None:
    for route, field in BAD:
        reply = await world.get(f"/repos/alice/pub{route}", encoded=True)
        assert reply.status == 422, (route, reply.status, reply.body)
        fields = [e["field"] for e in reply.json["errors"]]
        assert field in fields, (route, fields)
    # The readers survived every one of those: normal reads still work.
    ok = await world.get("/repos/alice/pub/contents/README.md")
    assert ok.status == 200


async def test_huge_per_page_is_clamped(world: World) -> None:
    reply = await world.get("/repos/alice/pub/commits?per_page=100000000000000000000")
    assert reply.status == 200 and len(reply.json) == 7
    branches = await world.get("/repos/alice/pub/branches?per_page=1000")
    assert branches.status == 200


async def test_odd_but_harmless_values(world: World) -> None:
    for route in (
        "/commits?author=(a%2B)%2B%24",  # a regex that would backtrack: fixed strings
        "/commits?path=:(glob)**",  # pathspec magic: literal
        "/contents/does-not-exist?ref=0000000000000000000000000000000000000000",
        "/git/trees/0123456789abcdef0123456789abcdef01234567",
        "/commits/" + "a" * 255,
        "/contents/" + "a/" * 300 + "x",
        "/branches/" + "%F0%9F%98%80",
        "/archive/zzz.tar.gz",
        f"/archive/{'0' * 40}.exe",
    ):
        reply = await world.get(f"/repos/alice/pub{route}", encoded=True)
        assert reply.status in (200, 404, 422), (route, reply.status, reply.body)


async def test_dead_reader_is_replaced(world: World) -> None:
    pool = world.server.ctx.readers
    assert pool is not None
    assert (await world.get("/repos/alice/pub/contents/README.md")).status == 200
    # Kill every idle reader behind the pool's back: the next request must still work.
    for slot in pool._slots.values():
        for cat in slot.idle:
            cat.proc.kill()
            await cat.proc.wait()
    assert (await world.get("/repos/alice/pub/contents/README.md")).status == 200
    assert (await world.get("/repos/alice/pub/git/trees/main")).status == 200


async def test_cached_objects_never_cross_repositories(
    world: World, git: Git, tmp_path: Path
) -> None:
    """An object read (and cached) through the private repository is not found by id
    through the public one, which does not have it."""
    work = tmp_path / "work"
    (work / "secret.txt").write_text("private only\n")
    (await git("add", "secret.txt", cwd=work)).check()
    (await git("commit", "-qm", "secret", cwd=work)).check()
    url = world.server.git_url("alice/priv", "alice", PASSWORD)
    (await git("push", "-q", url, "main", cwd=work)).check()
    secret = (await world.get("/repos/alice/priv/commits/main")).json
    tree_sha = secret["commit"]["tree"]["sha"]
    assert (await world.get(f"/repos/alice/priv/git/trees/{tree_sha}")).status == 200
    assert (
        await world.get(f"/repos/alice/priv/contents/secret.txt?ref={secret['sha']}")
    ).status == 200
    for route in (
        f"/git/trees/{tree_sha}",
        f"/commits/{secret['sha']}",
        f"/contents/secret.txt?ref={secret['sha']}",
        f"/commits?sha={secret['sha']}",
        f"/tarball/{secret['sha']}",
    ):
        reply = await world.get(f"/repos/alice/pub{route}", who="bob")
        assert reply.status in (404, 422), (route, reply.status)


async def test_archive_link_query_is_validated(world: World) -> None:
    sha = world.shas["c7"]
    for query, field in (
        ("expires=soon&signature=ab", "expires"),
        ("signature=zz%00", "signature"),
    ):
        reply = await world.get(f"/repos/alice/pub/archive/{sha}.zip?{query}", encoded=True)
        assert reply.status == 422, (query, reply.status)
        assert field in [e["field"] for e in reply.json["errors"]]
