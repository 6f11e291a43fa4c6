"""Branches, tags, commits, compare, contents, trees and archives against pushed history."""

from __future__ import annotations

import base64
import io
import tarfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from app.schemas.git import CommitOut, ContentOut, ContentsOut, TreeOut
from tests.api.browse_world import World, build_world
from tests.helpers import PASSWORD, Git, Server


@pytest.fixture
async def world(server: Server, git: Git, tmp_path: Path) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        yield await build_world(server, git, tmp_path, session)


async def test_branches_and_one_branch_with_slash(world: World) -> None:
    reply = await world.get("/repos/alice/pub/branches")
    assert reply.status == 200
    names = {b["name"]: b["commit"]["sha"] for b in reply.json}
    assert names == {"main": world.shas["c7"], "feature/x": world.shas["feature"]}
    assert reply.json[0]["commit"]["url"].startswith(world.api + "/repos/alice/pub/commits/")
    for path in ("/repos/alice/pub/branches/feature/x", "/repos/alice/pub/branches/feature%2Fx"):
        one = await world.get(path)
        assert one.status == 200, one.body
        assert one.json["name"] == "feature/x"
        assert one.json["commit"]["sha"] == world.shas["feature"]
        assert one.json["commit"]["commit"]["message"].startswith("feature work")
        assert one.json["_links"]["self"].endswith("/branches/feature/x")
    missing = await world.get("/repos/alice/pub/branches/nope")
    assert missing.status == 404
    assert missing.json["message"] == "Branch not found"


async def test_branches_paginate_with_link_header(world: World) -> None:
    first = await world.get("/repos/alice/pub/branches?per_page=1")
    assert len(first.json) == 1
    api = world.api
    assert first.headers["Link"] == (
        f'<{api}/repos/alice/pub/branches?per_page=1&page=2>; rel="next", '
        f'<{api}/repos/alice/pub/branches?per_page=1&page=2>; rel="last"'
    )
    second = await world.get("/repos/alice/pub/branches?per_page=1&page=2")
    assert 'rel="prev"' in second.headers["Link"] and 'rel="first"' in second.headers["Link"]
    assert {first.json[0]["name"], second.json[0]["name"]} == {"main", "feature/x"}
    whole = await world.get("/repos/alice/pub/branches")
    assert "Link" not in whole.headers


async def test_tags_peel_annotated(world: World) -> None:
    reply = await world.get("/repos/alice/pub/tags")
    assert reply.status == 200
    tags = {t["name"]: t for t in reply.json}
    assert tags["v1.0"]["commit"]["sha"] == world.shas["c4"]
    assert tags["v0.1"]["commit"]["sha"] == world.shas["c1"]
    assert tags["v1.0"]["tarball_url"] == f"{world.api}/repos/alice/pub/tarball/v1.0"
    assert [t["name"] for t in reply.json] == ["v1.0", "v0.1"]


async def test_commits_newest_first_paginated(world: World) -> None:
    reply = await world.get("/repos/alice/pub/commits?per_page=3")
    assert reply.status == 200
    assert [c["sha"] for c in reply.json] == [world.shas[k] for k in ("c7", "c6", "c5")]
    link = reply.headers["Link"]
    assert link == (
        f'<{world.api}/repos/alice/pub/commits?per_page=3&page=2>; rel="next", '
        f'<{world.api}/repos/alice/pub/commits?per_page=3&page=3>; rel="last"'
    )
    last = await world.get("/repos/alice/pub/commits?per_page=3&page=3")
    assert [c["sha"] for c in last.json] == [world.shas["c1"]]
    for item in reply.json:  # built as plain dicts for speed: the documented shape holds
        assert CommitOut.model_validate(item).model_dump(mode="json") == item
    first = reply.json[0]
    assert first["commit"]["author"]["date"] == "2024-01-07T12:00:00Z"
    assert first["commit"]["message"] == "seventh: readme\n"
    assert first["parents"][0]["sha"] == world.shas["c6"]
    assert first["url"] == f"{world.api}/repos/alice/pub/commits/{world.shas['c7']}"
    assert first["commit"]["tree"]["sha"]


async def test_commits_filters(world: World) -> None:
    async def shas(query: str) -> list[str]:
        reply = await world.get(f"/repos/alice/pub/commits?{query}")
        assert reply.status == 200, reply.body
        back = {v: k for k, v in world.shas.items()}
        return [back[c["sha"]] for c in reply.json]

    assert await shas("path=README.md") == ["c7", "c2", "c1"]
    assert await shas("path=src") == ["c6", "c5", "c3", "c1"]
    assert await shas("sha=feature/x&per_page=2") == ["feature", "c7"]
    assert await shas("sha=v1.0") == ["c4", "c3", "c2", "c1"]
    assert await shas(f"sha={world.shas['c3']}") == ["c3", "c2", "c1"]
    assert await shas("since=2024-01-05T00:00:00Z") == ["c7", "c6", "c5"]
    assert await shas("until=2024-01-02T23:00:00Z") == ["c2", "c1"]
    assert await shas("since=2024-01-03T00:00:00Z&until=2024-01-04T23:00:00Z") == ["c4", "c3"]
    assert await shas("author=other@example.com") == ["c6"]
    assert await shas("path=no/such/file") == []
    assert await shas("path=*") == []  # literal pathspec, no glob


async def test_one_commit_files_patch_stats(world: World) -> None:
    reply = await world.get(f"/repos/alice/pub/commits/{world.shas['c2']}")
    assert reply.status == 200
    body = reply.json
    assert body["stats"] == {"additions": 1, "deletions": 1, "total": 2}
    (readme,) = body["files"]
    assert readme["filename"] == "README.md" and readme["status"] == "modified"
    assert readme["patch"].startswith("@@ ")
    assert "-first" in readme["patch"] and "+second" in readme["patch"]
    renamed = (await world.get(f"/repos/alice/pub/commits/{world.shas['c4']}")).json["files"]
    assert renamed[0]["status"] == "renamed"
    assert renamed[0]["previous_filename"] == "docs/guide.md"
    assert renamed[0]["filename"] == "docs/manual.md"
    removed = (await world.get(f"/repos/alice/pub/commits/{world.shas['c5']}")).json["files"]
    assert removed[0]["status"] == "removed" and removed[0]["deletions"] == 2
    root = (await world.get(f"/repos/alice/pub/commits/{world.shas['c1']}")).json
    by_name = {f["filename"]: f for f in root["files"]}
    assert set(by_name) == {"README.md", "src/app.py", "docs/guide.md", "bin/blob.dat"}
    assert all(f["status"] == "added" for f in root["files"])
    assert "patch" not in by_name["bin/blob.dat"] or by_name["bin/blob.dat"]["patch"] is None
    assert by_name["docs/guide.md"]["additions"] == 20


async def test_one_commit_by_ref_with_slash_and_encoded(world: World) -> None:
    for ref in ("feature/x", "feature%2Fx", "main", "v1.0", world.shas["c3"][:10]):
        reply = await world.get(f"/repos/alice/pub/commits/{ref}")
        assert reply.status == 200, (ref, reply.body)
    assert (await world.get("/repos/alice/pub/commits/feature%2Fx")).json["sha"] == world.shas[
        "feature"
    ]
    missing = await world.get("/repos/alice/pub/commits/nope")
    assert missing.status == 422
    assert missing.json["message"] == "No commit found for SHA: nope"


async def test_compare(world: World) -> None:
    reply = await world.get("/repos/alice/pub/compare/v1.0...feature/x")
    assert reply.status == 200, reply.body
    body = reply.json
    assert body["status"] == "ahead"
    assert body["ahead_by"] == 4 and body["behind_by"] == 0 and body["total_commits"] == 4
    assert [c["sha"] for c in body["commits"]] == [
        world.shas[k] for k in ("c5", "c6", "c7", "feature")
    ]
    assert body["merge_base_commit"]["sha"] == world.shas["c4"]
    assert {f["filename"] for f in body["files"]} == {
        "README.md",
        "src/app.py",
        "src/util.py",
        "feature.txt",
    }
    behind = (await world.get("/repos/alice/pub/compare/feature%2Fx...v1.0")).json
    assert behind["status"] == "behind" and behind["behind_by"] == 4
    same = (await world.get("/repos/alice/pub/compare/main...main")).json
    assert same["status"] == "identical" and same["files"] == []
    paged = (await world.get("/repos/alice/pub/compare/v0.1...main?per_page=2&page=2")).json
    assert [c["sha"] for c in paged["commits"]] == [world.shas["c4"], world.shas["c5"]]
    bad = await world.get("/repos/alice/pub/compare/main..feature")
    assert bad.status == 422


async def test_contents_file_dir_raw(world: World) -> None:
    reply = await world.get("/repos/alice/pub/contents/README.md")
    assert reply.status == 200
    body = reply.json
    validated = ContentOut.model_validate(body)
    assert validated.model_dump(mode="json", by_alias=True, exclude_unset=True) == body
    assert body["type"] == "file" and body["encoding"] == "base64"
    assert base64.b64decode(body["content"]) == b"# Hello\n\nseventh\n"
    assert body["size"] == len(b"# Hello\n\nseventh\n")
    assert body["path"] == "README.md" and body["name"] == "README.md"
    assert body["url"] == f"{world.api}/repos/alice/pub/contents/README.md?ref=main"
    assert len(body["sha"]) == 40
    old = await world.get("/repos/alice/pub/contents/README.md?ref=v0.1")
    assert base64.b64decode(old.json["content"]) == b"# Hello\n\nfirst\n"
    listing = await world.get("/repos/alice/pub/contents/src")
    assert listing.status == 200
    ContentsOut.model_validate(listing.json)
    assert [(e["name"], e["type"], e["path"]) for e in listing.json] == [
        ("app.py", "file", "src/app.py")
    ]
    assert listing.json[0]["size"] == len("print('hello')\nprint('world')\n")
    root = await world.get("/repos/alice/pub/contents")
    assert {e["name"]: e["type"] for e in root.json} == {
        "README.md": "file",
        "bin": "dir",
        "docs": "dir",
        "src": "dir",
    }
    assert (await world.get("/repos/alice/pub/contents/")).json == root.json
    raw = await world.get(
        "/repos/alice/pub/contents/bin/blob.dat",
        headers={"Accept": "application/vnd.github.raw"},
    )
    assert raw.status == 200 and raw.body == bytes(range(256)) * 4
    assert (await world.get("/repos/alice/pub/contents/nope.txt")).status == 404
    assert (await world.get("/repos/alice/pub/contents/README.md/x")).status == 404
    missing_ref = await world.get("/repos/alice/pub/contents/README.md?ref=nope")
    assert missing_ref.status == 404


async def test_trees(world: World) -> None:
    reply = await world.get("/repos/alice/pub/git/trees/main")
    assert reply.status == 200
    body = reply.json
    TreeOut.model_validate(body)
    assert body["truncated"] is False
    assert {e["path"]: e["type"] for e in body["tree"]} == {
        "README.md": "blob",
        "bin": "tree",
        "docs": "tree",
        "src": "tree",
    }
    readme = next(e for e in body["tree"] if e["path"] == "README.md")
    assert readme["mode"] == "100644" and readme["size"] == 17
    src = next(e for e in body["tree"] if e["path"] == "src")
    assert src["mode"] == "040000" and "size" not in src
    full = (await world.get(f"/repos/alice/pub/git/trees/{body['sha']}?recursive=1")).json
    assert {e["path"] for e in full["tree"]} == {
        "README.md",
        "bin",
        "bin/blob.dat",
        "docs",
        "docs/manual.md",
        "src",
        "src/app.py",
    }
    assert full["sha"] == body["sha"]
    by_branch = (await world.get("/repos/alice/pub/git/trees/feature/x?recursive=1")).json
    assert "feature.txt" in {e["path"] for e in by_branch["tree"]}
    assert (await world.get("/repos/alice/pub/git/trees/nope")).status == 404


async def test_tree_truncated_past_limit(tmp_path: Path, git: Git) -> None:
    from tests.helpers import make_settings, start_server

    settings = make_settings(tmp_path, api_tree_max_entries=3)
    server = await start_server(settings)
    try:
        async with aiohttp.ClientSession() as session:
            world = await build_world(server, git, tmp_path, session)
            full = (await world.get("/repos/alice/pub/git/trees/main?recursive=1")).json
            assert full["truncated"] is True and len(full["tree"]) == 3
    finally:
        await server.test_server.close()


async def test_archives_redirect_and_stream(world: World) -> None:
    reply = await world.get("/repos/alice/pub/tarball/v1.0")
    assert reply.status == 302
    location = reply.headers["Location"]
    assert location.startswith(f"{world.api}/repos/alice/pub/archive/{world.shas['c4']}.tar.gz?")
    archive = await world.get(location, who=None)
    assert archive.status == 200
    assert archive.headers["Content-Type"] == "application/x-gzip"
    with tarfile.open(fileobj=io.BytesIO(archive.body), mode="r:gz") as tar:
        names = set(tar.getnames())
    prefix = f"alice-pub-{world.shas['c4'][:7]}"
    assert f"{prefix}/docs/manual.md" in names and f"{prefix}/src/util.py" in names
    followed = await world.get("/repos/alice/pub/zipball", redirects=True)
    assert followed.status == 200
    with zipfile.ZipFile(io.BytesIO(followed.body)) as zipped:
        assert f"alice-pub-{world.shas['c7'][:7]}/README.md" in zipped.namelist()


async def test_contents_size_limits(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub's limits, lowered here: over JSON_CONTENT_MAX only raw (streamed from git),
    over RAW_MAX refused with 403 too_large."""
    from app.services import browse

    monkeypatch.setattr(browse, "JSON_CONTENT_MAX", 500)
    blob = bytes(range(256)) * 4
    big = await world.get("/repos/alice/pub/contents/bin/blob.dat")
    assert big.status == 200
    assert big.json["encoding"] == "none" and big.json["content"] == ""
    assert big.json["size"] == len(blob)
    raw = await world.get(
        "/repos/alice/pub/contents/bin/blob.dat", headers={"Accept": "application/vnd.github.raw"}
    )
    assert raw.status == 200 and raw.body == blob
    monkeypatch.setattr(browse, "RAW_MAX", 1000)
    refused = await world.get("/repos/alice/pub/contents/bin/blob.dat")
    assert refused.status == 403
    assert refused.json["errors"][0]["code"] == "too_large"
    small = await world.get("/repos/alice/pub/contents/README.md")
    assert small.status == 200 and small.json["encoding"] == "base64"


async def test_empty_repository_then_symlink_and_submodule(
    world: World, git: Git, tmp_path: Path
) -> None:
    alice = await world.server.ctx.store.user_by_login("alice")
    assert alice is not None
    await world.server.repo(alice, "empty")
    base = "/repos/alice/empty"
    assert (await world.get(f"{base}/branches")).json == []
    assert (await world.get(f"{base}/tags")).json == []
    assert (await world.get(f"{base}/commits")).status == 409
    for route in ("/commits/main", "/contents/README.md", "/git/trees/main", "/tarball"):
        reply = await world.get(base + route)
        assert reply.status in (404, 422), (route, reply.status)
    work = tmp_path / "links"
    (await git("init", "-q", "-b", "main", str(work))).check()
    (work / "target.txt").write_text("target\n")
    (work / "link").symlink_to("target.txt")
    (await git("add", "-A", cwd=work)).check()
    sub = "1234567890abcdef1234567890abcdef12345678"
    (await git("update-index", "--add", "--cacheinfo", f"160000,{sub},vendor", cwd=work)).check()
    (await git("commit", "-qm", "links", cwd=work)).check()
    url = world.server.git_url("alice/empty", "alice", PASSWORD)
    (await git("push", "-q", url, "main", cwd=work)).check()
    link = (await world.get(f"{base}/contents/link")).json
    assert link["type"] == "symlink" and link["target"] == "target.txt"
    vendor = (await world.get(f"{base}/contents/vendor")).json
    assert vendor["type"] == "submodule" and vendor["sha"] == sub
    listing = {e["name"]: e["type"] for e in (await world.get(f"{base}/contents")).json}
    assert listing == {"link": "symlink", "target.txt": "file", "vendor": "submodule"}
    tree = {e["path"]: e for e in (await world.get(f"{base}/git/trees/main")).json["tree"]}
    assert tree["vendor"]["type"] == "commit" and tree["link"]["mode"] == "120000"
    assert (await world.get(f"{base}/contents/vendor/x")).status == 404
