"""A client that goes away takes its git processes with it: nothing the server started
for it keeps running (neither our direct child nor the pack-objects it forked)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

import aiohttp

from tests.e2e.smart_http_world import World, child_pids, git_processes_of, wait_until_gone, world
from tests.helpers import PASSWORD, basic

__all__ = ["world"]


async def _big_repo(world: World, megabytes: int = 24) -> str:
    """Random (incompressible) content in alice/pub, so a clone takes a while."""
    seeded = world.tmp / "seed-pub"
    for n in range(megabytes // 4):
        (seeded / f"blob{n}.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    (await world.git("add", "-A", cwd=seeded)).check()
    (await world.git("commit", "-q", "-m", "big", cwd=seeded)).check()
    (await world.git("push", "-q", str(world.bare(world.pub)), "main", cwd=seeded)).check()
    return await world.head(seeded)


def _marker(world: World) -> str:
    return str(world.server.settings.data_dir.resolve())


async def _wait_for_server_git(world: World) -> list[int]:
    """Poll until the server runs git for the request (no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not (found := git_processes_of(_marker(world))) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    return found


async def test_raw_client_closing_mid_clone_kills_git(world: World) -> None:
    """Read the start of a pack, stop reading (git blocks on the pipe), then drop the
    connection: the server must kill upload-pack and pack-objects."""
    sha = await _big_repo(world)
    body = f"0032want {sha}\n00000009done\n".encode()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(world.server.url, connector=connector) as http:
        resp = await http.post(
            "/alice/pub.git/git-upload-pack",
            data=body,
            headers={"Content-Type": "application/x-git-upload-pack-request"},
        )
        assert resp.status == 200
        first = await resp.content.read(4096)
        assert b"NAK" in first
        running = git_processes_of(_marker(world))
        assert running, "git should still be sending the pack"
        assert set(child_pids()) & set(running), "the git leader is a child of this process"
        resp.close()  # drops the connection without reading the rest
    assert await wait_until_gone(_marker(world)) == []
    assert not set(child_pids()) & set(running)


async def test_git_clone_killed_mid_transfer_leaves_no_git_behind(world: World) -> None:
    await _big_repo(world)
    target = world.tmp / "killed"
    proc = await asyncio.create_subprocess_exec(
        "git",
        "clone",
        "-q",
        world.url("alice/pub"),
        str(target),
        env=world.git.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # its own group: git-remote-http dies with it
    )
    try:
        running = await _wait_for_server_git(world)
        assert running, "the clone never reached git on the server"
        os.killpg(proc.pid, signal.SIGSTOP)  # the client stops reading: git blocks
        assert proc.returncode is None
        # Meanwhile the server still serves others: a git stuck on a full pipe never
        # holds the event loop.
        ls = await world.git("ls-remote", world.url("alice/priv", "rita"), timeout=60)
        assert world.priv_sha in ls.check().out
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert await wait_until_gone(_marker(world)) == []
    assert not set(child_pids()) & set(running)


async def test_client_abandoning_a_push_body_kills_git(world: World) -> None:
    """A push whose body stops after the pack header (index-pack waits for more), then
    the client goes away: receive-pack and index-pack must not stay behind."""
    command = f"{'0' * 40} {world.pub_sha} refs/heads/x\0report-status\n"
    start = f"{len(command) + 4:04x}{command}0000".encode()
    sent = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield start + b"PACK\x00\x00\x00\x02\x00\x00\x00\x01"
        sent.set()
        await asyncio.sleep(3600)  # never finishes: the client gives up below

    async with aiohttp.ClientSession(world.server.url) as http:
        task = asyncio.ensure_future(
            http.post(
                "/alice/pub.git/git-receive-pack",
                data=body(),
                headers={
                    "Content-Type": "application/x-git-receive-pack-request",
                    **basic("alice", PASSWORD),
                },
            )
        )
        await asyncio.wait_for(sent.wait(), 60)
        assert await _wait_for_server_git(world), "receive-pack never started"
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await wait_until_gone(_marker(world)) == []
    refs = await world.git("ls-remote", str(world.bare(world.pub)))
    assert "refs/heads/x" not in refs.check().out
