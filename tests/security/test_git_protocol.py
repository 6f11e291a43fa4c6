"""Hostile git traffic: gzip bombs, broken gzip, truncated pushes, a client killed
mid-push, concurrent pushes to one branch, a repository deleted while it is cloned.
The repository stays consistent and the next push works."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import re

import pytest

from tests.helpers import PASSWORD, basic
from tests.security.conftest import World

ZERO = "0" * 40


def pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


def upload_request(want: str) -> bytes:
    return (
        pkt(f"want {want} multi_ack_detailed side-band-64k ofs-delta\n".encode())
        + b"0000"
        + pkt(b"done\n")
    )


async def make_push(world: World, name: str, size: int = 0) -> tuple[str, bytes]:
    """A commit on top of alice/pub's main and the pack that carries it."""
    work = world.tmp / name
    url = world.server.git_url("alice/pub", "alice", world.tokens["alice"])
    (await world.git("clone", "-q", url, str(work))).check()
    (work / f"{name}.bin").write_bytes(os.urandom(size) if size else name.encode())
    (await world.git("add", "-A", cwd=work)).check()
    (await world.git("commit", "-qm", name, cwd=work)).check()
    sha = (await world.git("rev-parse", "HEAD", cwd=work)).check().out.strip()
    proc = await asyncio.create_subprocess_exec(
        "git", "pack-objects", "--stdout", "--revs", "-q", cwd=str(work),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env=world.git.env(),
    )  # fmt: skip
    pack, _ = await proc.communicate(f"{sha}\n^{world.head}\n".encode())
    return sha, pack


def push_body(old: str, new: str, pack: bytes) -> bytes:
    command = f"{old} {new} refs/heads/main\0report-status side-band-64k\n".encode()
    return pkt(command) + b"0000" + pack


def git_headers(service: str, **extra: str) -> dict[str, str]:
    return {"Content-Type": f"application/x-{service}-request", **extra}


async def assert_next_push_works(world: World, name: str) -> None:
    work = world.tmp / name
    url = world.server.git_url("alice/pub", "alice", world.tokens["alice"])
    (await world.git("clone", "-q", url, str(work))).check()
    (work / "next.txt").write_text("next\n")
    (await world.git("add", "-A", cwd=work)).check()
    (await world.git("commit", "-qm", "next", cwd=work)).check()
    (await world.git("push", "-q", url, "main", cwd=work)).check()


async def test_gzip_bomb_on_upload_pack(world: World) -> None:
    raw = upload_request(world.head) + b"0000" * (16 * 1024 * 1024)  # 64 MB inflated
    bomb = gzip.compress(raw, compresslevel=9)
    assert len(bomb) < 1024 * 1024
    headers = git_headers("git-upload-pack", **{"Content-Encoding": "gzip"})
    reply = await world.request(
        "POST", "/alice/pub.git/git-upload-pack", data=io.BytesIO(bomb), headers=headers
    )
    world.safe(reply)
    healthy = await world.request("GET", "/healthz")
    assert healthy.status == 200
    await world.intact()


async def test_gzip_bomb_on_receive_pack(world: World) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    headers = git_headers("git-receive-pack", **{"Content-Encoding": "gzip"})
    headers.update(basic("alice", PASSWORD))
    reply = await world.request(
        "POST", "/alice/pub.git/git-receive-pack", data=io.BytesIO(bomb), headers=headers
    )
    world.safe(reply)
    await world.intact()
    await assert_next_push_works(world, "after-bomb")


@pytest.mark.parametrize(
    "body",
    [b"\x1f\x8b\x08\x00garbage", b"not gzip at all", b"\x1f\x8b"],
    ids=["bad-deflate", "not-gzip", "header-only"],
)
async def test_broken_gzip_bodies(world: World, body: bytes) -> None:
    headers = git_headers("git-upload-pack", **{"Content-Encoding": "gzip"})
    reply = await world.request(
        "POST", "/alice/pub.git/git-upload-pack", data=body, headers=headers
    )
    world.safe(reply)
    await world.intact()


async def test_truncated_push_changes_nothing(world: World) -> None:
    sha, pack = await make_push(world, "truncated", size=200_000)
    body = push_body(world.head, sha, pack[: len(pack) // 2])
    headers = {**git_headers("git-receive-pack"), **basic("alice", PASSWORD)}
    reply = world.safe(
        await world.request(
            "POST", "/alice/pub.git/git-receive-pack", data=io.BytesIO(body), headers=headers
        )
    )
    assert b"unpack ok" not in reply.body
    await world.intact()
    await assert_next_push_works(world, "after-truncated")


async def test_client_killed_mid_push(world: World) -> None:
    sha, pack = await make_push(world, "killed", size=4_000_000)
    body = push_body(world.head, sha, pack)
    host, port = world.server.test_server.host, world.server.test_server.port
    _reader, writer = await asyncio.open_connection(host, port)
    auth = basic("alice", PASSWORD)["Authorization"]
    writer.write(
        (
            "POST /alice/pub.git/git-receive-pack HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {auth}\r\n"
            "Content-Type: application/x-git-receive-pack-request\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body[: len(body) // 2]
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()  # the client dies: no FIN handshake, half a pack sent
    for _ in range(100):
        healthy = await world.request("GET", "/healthz")
        assert healthy.status == 200
        if not any(world.server.ctx.storage.path("alice", "pub").glob("objects/incoming-*")):
            break
        await asyncio.sleep(0.05)
    await world.intact()
    await assert_next_push_works(world, "after-killed")


async def test_concurrent_pushes_to_one_branch(world: World) -> None:
    url = world.server.git_url("alice/pub", "alice", world.tokens["alice"])
    works = []
    for name in ("left", "right"):
        work = world.tmp / name
        (await world.git("clone", "-q", url, str(work))).check()
        (work / f"{name}.txt").write_text(name)
        (await world.git("add", "-A", cwd=work)).check()
        (await world.git("commit", "-qm", name, cwd=work)).check()
        works.append(work)
    results = await asyncio.gather(*(world.git("push", url, "main", cwd=w) for w in works))
    winners = [w for w, r in zip(works, results, strict=True) if r.code == 0]
    assert len(winners) == 1, [r.err for r in results]
    loser = next(r for r in results if r.code != 0)
    assert "rejected" in loser.err or "failed" in loser.err, loser.err
    # No HTTP 500 (as git's curl reports it); a bare "500" can occur inside a commit id.
    assert not re.search(r"(error|HTTP[^\n]*) 5\d\d\b", loser.err), loser.err
    winner_sha = (await world.git("rev-parse", "HEAD", cwd=winners[0])).check().out.strip()
    bare = world.server.ctx.storage.path("alice", "pub")
    main = (await world.git("rev-parse", "refs/heads/main", cwd=bare)).check().out.strip()
    assert main == winner_sha
    (await world.git("fsck", "--no-dangling", cwd=bare)).check()


async def test_repository_deleted_while_cloned(world: World) -> None:
    alice = world.users["alice"]
    await world.server.repo(alice, "big")
    work = world.tmp / "big-src"
    await world.git.make_worktree(work, {"blob.bin": os.urandom(8 * 1024 * 1024)})
    bare = world.server.ctx.storage.path("alice", "big")
    (await world.git("push", "-q", str(bare), "main", cwd=work)).check()
    sha = (await world.git("rev-parse", "HEAD", cwd=work)).check().out.strip()

    host, port = world.server.test_server.host, world.server.test_server.port
    reader, writer = await asyncio.open_connection(host, port, limit=64 * 1024)
    body = upload_request(sha)
    writer.write(
        (
            "POST /alice/big.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-git-upload-pack-request\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    first = await asyncio.wait_for(reader.read(65536), 30)
    assert first.startswith(b"HTTP/1.1 200")
    deleted = await world.request("DELETE", "/api/v1/repos/alice/big", token=world.tokens["alice"])
    assert deleted.status == 204, deleted.text
    received = len(first)
    while chunk := await asyncio.wait_for(reader.read(65536), 60):  # the clone drains
        received += len(chunk)
    writer.close()
    assert received > 0
    gone = world.safe(await world.request("GET", "/api/v1/repos/alice/big"))
    assert gone.status in (401, 404)
    assert not bare.exists()
    again = await world.request(
        "POST",
        "/api/v1/user/repos",
        data=b'{"name": "big"}',
        headers={"Content-Type": "application/json", **basic("alice", PASSWORD)},
    )
    assert again.status == 201, again.text
    await world.intact(skip=("big",))


async def test_ref_names_that_look_like_options_are_pushed_as_data(world: World) -> None:
    """`--upload-pack=...` is a valid branch name: it is stored and listed, never run."""
    marker = "pwned-marker"  # relative: git would create it in its working directory
    url = world.server.git_url("alice/pub", "alice", world.tokens["alice"])
    work = world.tmp / "dash"
    (await world.git("clone", "-q", url, str(work))).check()
    ref = f"refs/heads/--upload-pack=touch_{marker}"
    (await world.git("push", "-q", url, f"HEAD:{ref}", cwd=work)).check()
    branches = world.safe(await world.request("GET", "/api/v1/repos/alice/pub/branches"))
    assert branches.status == 200
    name = ref.removeprefix("refs/heads/")
    assert name in [b["name"] for b in branches.json()]
    for path in (
        f"/api/v1/repos/alice/pub/commits?sha={name}",
        f"/api/v1/repos/alice/pub/contents/README.md?ref={name}",
        f"/api/v1/repos/alice/pub/git/trees/{name}",
    ):
        world.safe(await world.request("GET", path, encoded=False))
    data_dir = world.server.settings.data_dir
    assert not list(data_dir.rglob(marker)) and not (world.tmp / marker).exists()
