"""Request and response bodies with the real git client: gzip bodies (many `have`
lines), chunked bodies (small http.postBuffer), a push of 50 MB of random data."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from tests.e2e.smart_http_world import World, http_headers, world
from tests.helpers import Git

__all__ = ["world"]


def _sent_headers(trace: str) -> list[tuple[str, str]]:
    """Headers the git client sent, from its GIT_CURL_VERBOSE trace (names lower-cased)."""
    found = []
    for line in trace.splitlines():
        _, sep, header = line.partition("=> Send header: ")
        name, colon, value = header.partition(":")
        if sep and colon:
            found.append((name.strip().lower(), value.strip()))
    return found


async def _many_commits(git: Git, work: Path, count: int, prefix: str) -> None:
    """`count` commits in one fast-import run (a commit per process would take minutes),
    dated after everything else, so negotiation offers them first as `have` lines."""
    start = int(time.time()) + 3600
    script = []
    for n in range(count):
        data = f"{prefix} {n}\n".encode()
        script.append(
            f"commit refs/heads/{prefix}\n"
            f"committer T <t@example.com> {start + n} +0000\n"
            f"data 4\nc{n:03}\n"
            + ("from refs/heads/main\n" if n == 0 else "")
            + f"M 100644 inline {prefix}.txt\ndata {len(data)}\n"
        )
        script.append(data.decode() + "\n")
    (await git("fast-import", "--quiet", cwd=work, input="".join(script).encode())).check()


@pytest.mark.parametrize("version", ["0", "2"])
async def test_fetch_with_many_haves_sends_gzip_bodies(world: World, version: str) -> None:
    """A client with hundreds of local commits the server lacks negotiates with big
    `have` lists; git gzips those upload-pack bodies and the server must inflate them
    exactly once."""
    proto = ("-c", f"protocol.version={version}")
    code, err, client = await world.clone(world.url("alice/pub"), "client")
    assert code == 0, err
    await _many_commits(world.git, client, 400, "local")
    # The server moves on too, so the fetch has something to negotiate about.
    seeded = world.tmp / "seed-pub"
    (seeded / "new.txt").write_text("news\n")
    (await world.git("add", "-A", cwd=seeded)).check()
    (await world.git("commit", "-q", "-m", "news", cwd=seeded)).check()
    (await world.git("push", "-q", str(world.bare(world.pub)), "main", cwd=seeded)).check()
    new_sha = await world.head(seeded)

    env = {"GIT_CURL_VERBOSE": "1", "GIT_TRACE_PACKET": "1"}
    fetch = await world.git(*proto, "fetch", "origin", cwd=client, env=env)
    assert fetch.code == 0, fetch.err[-3000:]
    assert await world.head(client, "origin/main") == new_sha
    sent = _sent_headers(fetch.err)
    assert ("content-encoding", "gzip") in sent, "git did not gzip any body"
    assert fetch.err.count("> have ") + fetch.err.count("fetch> have ") >= 100
    assert all(name != "content-encoding" for name, _ in http_headers(fetch.err))
    (await world.git("fsck", "--no-progress", cwd=client)).check()


async def test_push_with_small_post_buffer_is_chunked(world: World) -> None:
    code, err, work = await world.clone(world.url("alice/pub"), "chunky")
    assert code == 0, err
    payload = os.urandom(1024 * 1024)
    (work / "random.bin").write_bytes(payload)
    (await world.git("add", "-A", cwd=work)).check()
    (await world.git("commit", "-q", "-m", "random", cwd=work)).check()
    sha = await world.head(work)
    env = {"GIT_CURL_VERBOSE": "1"}
    push = await world.git(
        "-c",
        "http.postBuffer=65536",
        "push",
        world.url("alice/pub", "alice"),
        "main",
        cwd=work,
        env=env,
    )
    assert push.code == 0, push.err[-3000:]
    assert ("transfer-encoding", "chunked") in _sent_headers(push.err)
    refs = await world.git("ls-remote", str(world.bare(world.pub)), "refs/heads/main")
    assert refs.check().out.split()[0] == sha
    code, err, again = await world.clone(world.url("alice/pub"), "again")
    assert code == 0, err
    assert (again / "random.bin").read_bytes() == payload


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
async def test_push_50mb_of_random_data_then_clone(world: World) -> None:
    code, err, work = await world.clone(world.url("alice/priv", "alice"), "big")
    assert code == 0, err
    with (work / "random.bin").open("wb") as fh:
        for _ in range(52):
            fh.write(os.urandom(1024 * 1024))
    (work / "more").mkdir()
    for n in range(3):
        (work / "more" / f"part{n}.bin").write_bytes(os.urandom(256 * 1024))
    (await world.git("add", "-A", cwd=work)).check()
    (await world.git("commit", "-q", "-m", "50 MB", cwd=work)).check()
    sha = await world.head(work)
    push = await world.git("push", world.url("alice/priv", "wendy"), "main", cwd=work)
    assert push.code == 0, push.err[-3000:]
    bare = world.bare(world.priv)
    (await world.git("--git-dir", str(bare), "fsck", "--no-progress", "--strict")).check()

    code, err, clone = await world.clone(world.url("alice/priv", "rita"), "big-clone")
    assert code == 0, err
    assert await world.head(clone) == sha
    for name in ("random.bin", "more/part0.bin", "more/part1.bin", "more/part2.bin"):
        assert _sha256(clone / name) == _sha256(work / name), name
    (await world.git("fsck", "--no-progress", "--strict", cwd=clone)).check()
    events = await world.server.ctx.store.list_events([world.priv.id])
    assert any(e.type == "push" and sha in e.payload for e in events)
