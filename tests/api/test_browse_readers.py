"""The cat-file reader pool against real repositories: reuse, bounds, idle timeout, dead
readers, names it refuses, and freshness after a push."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from app.git.process import GitConfig
from app.git.reader import ObjectTooLarge, ReaderPool
from app.services.bootstrap import prepare_data_dir
from app.settings import Settings
from tests.api.browse_world import World, build_world, make_history
from tests.helpers import PASSWORD, Git, Server


@pytest.fixture
async def repos(tmp_path: Path, git: Git) -> list[Path]:
    work = tmp_path / "work"
    await make_history(git, work)
    paths = []
    for index in range(3):
        bare = tmp_path / f"r{index}.git"
        (await git("clone", "-q", "--bare", str(work), str(bare))).check()
        paths.append(bare)
    return paths


@pytest.fixture
def config(settings: Settings) -> GitConfig:
    return prepare_data_dir(settings)


async def test_pool_reuses_one_process(config: GitConfig, repos: list[Path]) -> None:
    pool = ReaderPool(config, max_processes=4, per_repo=2)
    await pool.start()
    try:
        for _ in range(20):
            async with pool.reader(1, repos[0]) as cat:
                assert await cat.info("refs/heads/main^{commit}") is not None
        assert pool.started == 1 and pool.open_processes == 1
    finally:
        await pool.close()
    assert pool.open_processes == 0


async def test_pool_bounds_processes(config: GitConfig, repos: list[Path]) -> None:
    pool = ReaderPool(config, max_processes=2, per_repo=2)
    await pool.start()
    peak = 0

    async def read(index: int) -> None:
        nonlocal peak
        repo = repos[index % 3]
        async with pool.reader(index % 3, repo) as cat:
            peak = max(peak, pool.open_processes)
            info = await cat.info("refs/heads/main^{tree}")
            assert info is not None and info.type == "tree"
            await asyncio.sleep(0.01)

    try:
        await asyncio.gather(*(read(i) for i in range(30)))
        assert peak <= 2 and pool.open_processes <= 2
    finally:
        await pool.close()


async def test_idle_readers_are_closed(config: GitConfig, repos: list[Path]) -> None:
    pool = ReaderPool(config, max_processes=4, idle_seconds=60)
    await pool.start()
    try:
        async with pool.reader(1, repos[0]) as cat:
            proc = cat.proc
        assert await pool.reap(time.monotonic() - 60) == 0  # used just now: kept
        assert await pool.reap(time.monotonic() + 1) == 1
        assert pool.open_processes == 0 and proc.returncode is not None
        async with pool.reader(1, repos[0]) as cat:  # a new one starts when needed
            assert await cat.info("HEAD") is not None
        assert pool.started == 2
    finally:
        await pool.close()


async def test_unpooled_mode_starts_a_process_per_checkout(
    config: GitConfig, repos: list[Path]
) -> None:
    pool = ReaderPool(config, pooled=False)
    await pool.start()
    for _ in range(3):
        async with pool.reader(1, repos[0]) as cat:
            assert await cat.info("HEAD") is not None
    assert pool.started == 3 and pool.open_processes == 0
    await pool.close()


async def test_refused_names_never_reach_the_reader(config: GitConfig, repos: list[Path]) -> None:
    pool = ReaderPool(config)
    await pool.start()
    try:
        async with pool.reader(1, repos[0]) as cat:
            for name in ("HEAD:../x", "-x", "a\ninfo HEAD", "a b", "HEAD:README.md", ""):
                with pytest.raises(ValueError):
                    await cat.info(name)
            assert cat.alive
            assert await cat.info("no-such-thing") is None
            got = await cat.read_many(["HEAD", "0" * 40, "HEAD^{tree}"], 1 << 20)
            assert got[0] is not None and got[1] is None and got[2] is not None
            assert got[2][0].type == "tree"
        assert pool.started == 1
    finally:
        await pool.close()


@pytest.fixture
async def world(server: Server, git: Git, tmp_path: Path) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        yield await build_world(server, git, tmp_path, session)


async def test_pooled_reader_sees_a_later_push(world: World, git: Git, tmp_path: Path) -> None:
    before = await world.get("/repos/alice/pub/contents/README.md")
    assert before.status == 200
    work = tmp_path / "work"
    (work / "README.md").write_text("after the push\n")
    (await git("commit", "-qam", "eighth", cwd=work)).check()
    url = world.server.git_url("alice/pub", "alice", PASSWORD)
    (await git("push", "-q", url, "main", cwd=work)).check()
    after = await world.get(
        "/repos/alice/pub/contents/README.md", headers={"Accept": "application/vnd.github.raw"}
    )
    assert after.body == b"after the push\n"
    commits = await world.get("/repos/alice/pub/commits?per_page=1")
    assert commits.json[0]["commit"]["message"] == "eighth\n"


async def test_too_large_object_discards_the_reader(config: GitConfig, repos: list[Path]) -> None:
    pool = ReaderPool(config)
    await pool.start()
    try:
        async with pool.reader(1, repos[0]) as cat:
            with pytest.raises(ObjectTooLarge):
                await cat.read("HEAD^{tree}", 10)
            assert not cat.alive  # the rest of the object was still in the pipe
        async with pool.reader(1, repos[0]) as cat:
            assert await cat.read("HEAD^{tree}", 1 << 20) is not None
        assert pool.started == 2
    finally:
        await pool.close()
