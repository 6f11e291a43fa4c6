"""Delivery under pressure and across processes: a reader that never reads, shutdown,
the `events watch` CLI reconnecting, and two instances sharing Redis."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

import aiohttp
import pytest

from app.services.events import emit
from app.web.events_ws import close_all
from tests.e2e.events_world import WAIT, Pusher, subscriber
from tests.helpers import Git, Server, make_settings, start_server


async def test_a_subscriber_that_never_reads_is_dropped_and_nobody_waits(
    tmp_path: Path,
) -> None:
    server = await start_server(make_settings(tmp_path, ws_queue_size=4))
    try:
        alice = await server.user("alice")
        repo = await server.repo(alice, "busy")
        token = await server.token(alice)
        hub = server.ctx.hub
        big = {"blob": "x" * 256 * 1024}
        async with (
            subscriber(server, token, ["alice/busy"]) as slow,
            subscriber(server, token, ["alice/busy"]) as fast,
        ):
            before = hub.subscriber_count
            # The slow one never reads: its socket buffers fill, then its queue, then it is
            # closed. Until then, and after, the fast one gets every event at once.
            rounds = 0
            while hub.subscriber_count == before:
                rounds += 1
                assert rounds < 2000, "the slow subscriber was never dropped"
                [event] = await emit(server.ctx, repo, [("push", big)], "alice")
                got = await fast.next()
                assert got["id"] == event.id
            [after] = await emit(server.ctx, repo, [("push", {"n": 1})], "alice")
            assert (await fast.next())["id"] == after.id
            # The slow reader finally reads: what was buffered, then a 1008 close (or a
            # cut connection, if its buffers were too full for the close frame).
            codes = []
            while not slow.ws.closed:
                message = await slow.ws.receive(timeout=WAIT)
                if message.type is aiohttp.WSMsgType.CLOSE:
                    codes.append(message.data)
            assert codes == [1008] and slow.ws.close_code == 1008
    finally:
        await server.test_server.close()


async def test_shutdown_closes_every_socket_with_1001(tmp_path: Path) -> None:
    server = await start_server(make_settings(tmp_path))
    closed = False
    try:
        async with subscriber(server, None, ["alice/x"]) as a, subscriber(server) as b:
            await server.test_server.close()
            closed = True
            for sub in (a, b):
                message = await sub.ws.receive(timeout=WAIT)
                assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1001
    finally:
        if not closed:
            await server.test_server.close()


async def test_events_watch_prints_json_lines_and_resumes_after_a_break(
    server: Server, git: Git, tmp_path: Path
) -> None:
    alice = await server.user("alice")
    await server.repo(alice, "hello")
    token = await server.token(alice)
    pusher = Pusher(server, git, tmp_path / "w", "alice/hello", "alice")
    await pusher.init()
    await pusher.push()
    first = await pusher.commit_and_push("before watch")
    listed = await _rest_events(server, "alice/hello")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "APP_TOKEN": token}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "events",
        "watch",
        "alice/hello",
        "--url",
        server.url,
        "--since-id",
        str(listed[-2]["id"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(tmp_path),
    )
    assert proc.stdout is not None
    try:

        async def line() -> dict[str, object]:
            raw = await asyncio.wait_for(proc.stdout.readline(), WAIT)  # type: ignore[union-attr]
            assert raw, "events watch ended"
            data: dict[str, object] = json.loads(raw)
            return data

        replayed = await line()
        assert replayed == listed[-1]
        assert replayed["payload"]["after"] == first  # type: ignore[index]
        second = await pusher.commit_and_push("while watching")
        assert (await line())["payload"]["after"] == second  # type: ignore[index]
        # The server drops every socket; two pushes land before the watcher is back.
        await close_all(server.app, code=1012)
        third = await pusher.commit_and_push("during the break 1")
        fourth = await pusher.commit_and_push("during the break 2")
        got = [(await line())["payload"]["after"] for _ in range(2)]  # type: ignore[index]
        assert got == [third, fourth]
        fifth = await pusher.commit_and_push("after the break")
        assert (await line())["payload"]["after"] == fifth  # type: ignore[index]
    finally:
        proc.terminate()
        await proc.wait()


async def _rest_events(server: Server, full_name: str) -> list[dict[str, object]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/v1/repos/{full_name}/events") as resp,
    ):
        assert resp.status == 200
        data: list[dict[str, object]] = await resp.json()
        return data


REDIS_URL = os.environ.get("APP_TEST_REDIS_URL")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="APP_TEST_REDIS_URL is not set (Redis hub test)")
async def test_a_push_through_one_instance_reaches_a_subscriber_of_another(
    git: Git, tmp_path: Path
) -> None:
    prefix = f"githost-test-{secrets.token_hex(6)}:"
    settings = make_settings(tmp_path, redis_url=REDIS_URL, redis_prefix=prefix)
    a = await start_server(settings)
    b = await start_server(settings)  # the same SQLite file and repositories
    try:
        alice = await a.user("alice")
        await a.repo(alice, "shared")
        token = await a.token(alice)
        pusher = Pusher(a, git, tmp_path / "w", "alice/shared", "alice")
        sha = await pusher.init()
        async with (
            subscriber(b, token, ["alice/shared"]) as on_b,
            subscriber(a, token, ["alice/shared"]) as on_a,
        ):
            await pusher.push()
            got_b = await on_b.wait_for(2)
            got_a = await on_a.wait_for(2)
        assert [e["event"] for e in got_b] == ["push", "branch.created"]
        assert got_b[0]["payload"]["after"] == sha
        assert got_a == got_b
        # Access notices travel too: B's cache learns the repository turned private.
        bob = await a.user("bob")
        bob_token = await a.token(bob)
        await a.repo(alice, "open")
        opened = Pusher(a, git, tmp_path / "o", "alice/open", "alice")
        await opened.init()
        async with subscriber(b, bob_token, ["alice/shared", "alice/open"]) as stranger:
            await pusher.commit_and_push("public still")
            await stranger.until("alice/shared")
            async with (
                aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as http,
                http.patch(f"{a.url}/api/v1/repos/alice/shared", json={"private": True}) as resp,
            ):
                assert resp.status == 200
            await pusher.commit_and_push("private now")
            await opened.push()
            assert {e["repo"] for e in await stranger.until("alice/open")} == {"alice/open"}
    finally:
        await a.test_server.close()
        await b.test_server.close()
