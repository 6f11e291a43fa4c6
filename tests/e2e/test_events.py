"""The event stream end to end: real git pushes, real WebSocket clients, the REST log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import aiohttp

from app.services.users import create_token
from tests.e2e.events_world import Pusher, subscriber
from tests.helpers import Git, Server

ZERO = "0" * 40


async def test_push_event_carries_what_git_rev_parse_says(
    server: Server, git: Git, tmp_path: Path
) -> None:
    alice = await server.user("alice")
    await server.repo(alice, "hello")
    token = await server.token(alice)
    pusher = Pusher(server, git, tmp_path / "w", "alice/hello", "alice")
    first = await pusher.init()
    async with subscriber(server, token, ["alice/hello"]) as sub:
        await pusher.push()
        created = await sub.wait_for(2)
        second = await pusher.commit_and_push("second commit\n\nwith a body")
        await sub.wait_for(3)
        # A forced update: back to the first commit, then a new one beside it.
        (await git("reset", "-q", "--hard", first, cwd=pusher.path)).check()
        third = await pusher.commit("rewritten")
        await pusher.push("+main")
        events = await sub.wait_for(4)

    push, branch = created
    assert push["type"] == "event" and push["event"] == "push"
    assert push["repo"] == "alice/hello" and push["actor"] == "alice"
    assert push["payload"]["ref"] == "refs/heads/main"
    assert push["payload"]["before"] == ZERO and push["payload"]["after"] == first
    assert push["payload"]["created"] is True and push["payload"]["deleted"] is False
    assert [c["sha"] for c in push["payload"]["commits"]] == [first]
    assert push["created_at"].endswith("Z")
    assert branch["event"] == "branch.created"
    assert branch["payload"]["ref"] == "refs/heads/main" and branch["payload"]["sha"] == first

    update = events[2]["payload"]
    assert (update["before"], update["after"]) == (first, second)
    assert update["forced"] is False and update["created"] is False
    assert [(c["sha"], c["message"]) for c in update["commits"]] == [
        (second, "second commit\n\nwith a body")
    ]
    assert update["commits"][0]["author"] == {"name": "Test Author", "email": "author@example.com"}

    forced = events[3]["payload"]
    assert (forced["before"], forced["after"]) == (second, third)
    assert forced["forced"] is True
    assert [c["sha"] for c in forced["commits"]] == [third]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4


async def test_branch_and_tag_created_and_deleted(server: Server, git: Git, tmp_path: Path) -> None:
    alice = await server.user("alice")
    await server.repo(alice, "hello")
    token = await server.token(alice)
    pusher = Pusher(server, git, tmp_path / "w", "alice/hello", "alice")
    head = await pusher.init()
    await pusher.push()
    (await git("tag", "v1", cwd=pusher.path)).check()
    (await git("tag", "-a", "v2", "-m", "release two", cwd=pusher.path)).check()
    v2 = await pusher.rev("refs/tags/v2")
    async with subscriber(server, token, ["alice/hello"]) as sub:
        await pusher.push("main:refs/heads/feature")
        await pusher.push("refs/tags/v1", "refs/tags/v2")
        await pusher.push(":refs/heads/feature")
        await pusher.push(":refs/tags/v1")
        events = await sub.wait_for(7)

    got = [(e["event"], e["payload"]["ref"], e["payload"].get("sha")) for e in events]
    assert got[:2] == [
        ("push", "refs/heads/feature", None),
        ("branch.created", "refs/heads/feature", head),
    ]
    assert sorted(got[2:4]) == [
        ("tag.created", "refs/tags/v1", head),
        ("tag.created", "refs/tags/v2", v2),
    ]
    assert got[4:] == [
        ("push", "refs/heads/feature", None),
        ("branch.deleted", "refs/heads/feature", head),
        ("tag.deleted", "refs/tags/v1", head),
    ]
    deleted_push = events[4]["payload"]
    assert deleted_push["deleted"] is True and deleted_push["after"] == ZERO
    assert deleted_push["before"] == head and deleted_push["commits"] == []


async def test_repository_created_and_deleted_through_the_api(server: Server) -> None:
    alice = await server.user("alice")
    token = await server.token(alice)
    headers = {"Authorization": f"token {token}"}
    async with subscriber(server, token) as sub, aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{server.url}/api/v1/user/repos", json={"name": "fresh"}) as resp:
            assert resp.status == 201, await resp.text()
        async with http.get(f"{server.url}/api/v1/repos/alice/fresh/events") as resp:
            listed = await resp.json()
        async with http.delete(f"{server.url}/api/v1/repos/alice/fresh") as resp:
            assert resp.status == 204
        events = await sub.wait_for(2)
    assert [(e["event"], e["repo"], e["actor"]) for e in events] == [
        ("repository.created", "alice/fresh", "alice"),
        ("repository.deleted", "alice/fresh", "alice"),
    ]
    assert events[0]["payload"]["repository"]["full_name"] == "alice/fresh"
    assert listed == [events[0]]  # stored before sent, listed exactly as sent


async def test_repository_created_by_the_cli_is_stored_and_replayed(
    server: Server, tmp_path: Path
) -> None:
    alice = await server.user("alice")
    token = await server.token(alice)
    async with subscriber(server, token) as sub:
        since = sub.other[0]["last_id"]
    proc = await asyncio.create_subprocess_exec(
        *_python(),
        "-m",
        "app",
        "repo",
        "create",
        "alice/fromcli",
        "--data-dir",
        str(server.settings.data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_cli_env(),
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    async with subscriber(server, token, since_id=since) as sub:
        events = await sub.wait_for(1)
    assert [(e["event"], e["repo"]) for e in events] == [("repository.created", "alice/fromcli")]


async def test_replay_after_a_disconnect_gives_exactly_what_was_missed(
    server: Server, git: Git, tmp_path: Path
) -> None:
    alice = await server.user("alice")
    await server.repo(alice, "hello")
    token = await server.token(alice)
    pusher = Pusher(server, git, tmp_path / "w", "alice/hello", "alice")
    await pusher.init()
    async with subscriber(server, token, ["alice/hello"]) as sub:
        await pusher.push()
        seen = await sub.wait_for(2)
    last_seen = seen[-1]["id"]
    missed = [await pusher.commit_and_push(f"missed {n}") for n in range(3)]
    async with subscriber(server, token, ["alice/hello"], since_id=last_seen) as sub:
        replayed = await sub.wait_for(3)
        live = await pusher.commit_and_push("live")
        await sub.wait_for(4)
        extra = await sub.sync()  # anything duplicated would have come before the pong
    assert [e["event"] for e in replayed[:3]] == ["push"] * 3
    assert [e["payload"]["after"] for e in replayed[:3]] == missed
    assert [e["payload"]["after"] for e in sub.events] == [*missed, live]
    assert extra == []
    ids = [e["id"] for e in sub.events]
    assert ids == sorted(ids) and min(ids) > last_seen


async def test_a_stranger_never_receives_a_private_repository(
    server: Server, git: Git, tmp_path: Path
) -> None:
    alice, bob = await server.user("alice"), await server.user("bob")
    await server.repo(alice, "secret", private=True)
    await server.repo(alice, "open")
    alice_token, bob_token = await server.token(alice), await server.token(bob)
    secret = Pusher(server, git, tmp_path / "s", "alice/secret", "alice")
    opened = Pusher(server, git, tmp_path / "o", "alice/open", "alice")
    await secret.init()
    await opened.init()
    async with (
        subscriber(server, bob_token, ["alice/secret", "alice/open"]) as by_name,
        subscriber(server, bob_token) as everything,
        subscriber(server, None, ["alice/secret", "alice/open"]) as anonymous,
        subscriber(server, bob_token, ["alice/secret"], since_id=0) as replaying,
        subscriber(server, alice_token, ["alice/secret"]) as owner,
    ):
        await secret.push()
        await owner.wait_for(2)
        await opened.push()  # the sentinel: what came before it has been delivered
        for sub in (by_name, everything, anonymous):
            before = await sub.until("alice/open")
            assert {e["repo"] for e in before} == {"alice/open"}
        assert await replaying.sync() == []


async def test_turning_private_or_removing_a_collaborator_stops_delivery_at_once(
    server: Server, git: Git, tmp_path: Path
) -> None:
    alice, bob, carol = [await server.user(n) for n in ("alice", "bob", "carol")]
    await server.repo(alice, "flip")
    await server.repo(alice, "team", private=True)
    await server.repo(alice, "open")
    await server.collaborator((await server.ctx.store.repo_by_name("alice", "team")), carol, "read")  # type: ignore[arg-type]
    alice_token, bob_token, carol_token = (
        await server.token(alice),
        await server.token(bob),
        await server.token(carol),
    )
    flip = Pusher(server, git, tmp_path / "f", "alice/flip", "alice")
    team = Pusher(server, git, tmp_path / "t", "alice/team", "alice")
    opened = Pusher(server, git, tmp_path / "o", "alice/open", "alice")
    for p in (flip, team, opened):
        await p.init()
    api = f"{server.url}/api/v1/repos/alice"
    async with (
        subscriber(server, bob_token, ["alice/flip", "alice/open"]) as stranger,
        subscriber(server, carol_token, ["alice/team", "alice/open"]) as collaborator,
        aiohttp.ClientSession(headers={"Authorization": f"token {alice_token}"}) as http,
    ):
        await flip.push()
        assert {e["repo"] for e in await stranger.until("alice/flip", "branch.created")} == {
            "alice/flip"
        }
        await team.push()
        await collaborator.until("alice/team", "branch.created")

        async with http.patch(f"{api}/flip", json={"private": True}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.delete(f"{api}/team/collaborators/carol") as resp:
            assert resp.status == 204, await resp.text()
        await flip.commit_and_push("after private")
        await team.commit_and_push("after removal")
        await opened.push()
        for sub in (stranger, collaborator):
            assert {e["repo"] for e in await sub.until("alice/open")} == {"alice/open"}


async def test_fifty_subscribers_receive_the_same_event(
    server: Server, git: Git, tmp_path: Path
) -> None:
    alice = await server.user("alice")
    await server.repo(alice, "hello")
    token = await server.token(alice)
    pusher = Pusher(server, git, tmp_path / "w", "alice/hello", "alice")
    sha = await pusher.init()
    async with contextlib.AsyncExitStack() as stack:
        subs = [
            await stack.enter_async_context(
                subscriber(server, token if n % 2 else None, ["alice/hello"])
            )
            for n in range(50)
        ]
        await pusher.push()
        received = await asyncio.gather(*(s.wait_for(2) for s in subs))
    firsts = {(r[0]["id"], r[0]["event"], r[0]["payload"]["after"]) for r in received}
    assert len(firsts) == 1 and firsts.pop()[1:] == ("push", sha)


async def test_a_refused_push_publishes_nothing(server: Server, git: Git, tmp_path: Path) -> None:
    alice = await server.user("alice")
    await server.repo(alice, "hello")
    token = await server.token(alice)
    pusher = Pusher(server, git, tmp_path / "w", "alice/hello", "alice")
    head = await pusher.init()
    await pusher.push()
    # A commit whose author date is garbage: receive.fsckObjects refuses the whole pack.
    tree = await pusher.rev("HEAD^{tree}")
    body = (
        f"tree {tree}\nparent {head}\nauthor Bad <bad@example.com> yesterday +0000\n"
        f"committer Bad <bad@example.com> 1700000000 +0000\n\nbroken\n"
    )
    bad = (
        (
            await git(
                "hash-object",
                "-t",
                "commit",
                "-w",
                "--literally",
                "--stdin",
                cwd=pusher.path,
                input=body.encode(),
            )
        )
        .check()
        .out.strip()
    )
    async with subscriber(server, token, ["alice/hello"]) as sub:
        refused = await git("push", "-q", pusher.remote, f"{bad}:refs/heads/main", cwd=pusher.path)
        assert refused.code != 0
        await pusher.push("main:refs/heads/sentinel")
        before = await sub.until("alice/hello", "branch.created")
    assert [e["payload"]["ref"] for e in before] == ["refs/heads/sentinel"] * 2


async def test_rest_route_pages_the_log_oldest_first(
    server: Server, git: Git, tmp_path: Path
) -> None:
    alice, bob = await server.user("alice"), await server.user("bob")
    await server.repo(alice, "hello")
    await server.repo(alice, "secret", private=True)
    pusher = Pusher(server, git, tmp_path / "w", "alice/hello", "alice")
    await pusher.init()
    await pusher.push()
    for n in range(3):
        await pusher.commit_and_push(f"c{n}")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api/v1/repos/alice/hello/events") as resp:
            everything = await resp.json()
            assert "Link" not in resp.headers
        assert [e["event"] for e in everything] == [
            "repository.created",
            "push",
            "branch.created",
            "push",
            "push",
            "push",
        ]
        since = everything[2]["id"]
        url = f"{server.url}/api/v1/repos/alice/hello/events?since_id={since}&per_page=2"
        async with http.get(url) as resp:
            page1 = await resp.json()
            link = resp.headers["Link"]
        assert [e["id"] for e in page1] == [e["id"] for e in everything[3:5]]
        assert 'rel="next"' in link and 'rel="last"' in link and f"since_id={since}" in link
        async with http.get(f"{server.url}/api/v1/repos/alice/hello/events?since_id=-1") as resp:
            assert resp.status == 422
        bob_token = await server.token(bob)
        for headers in ({}, {"Authorization": f"token {bob_token}"}):
            async with http.get(
                f"{server.url}/api/v1/repos/alice/secret/events", headers=headers
            ) as resp:
                assert resp.status == 404


async def test_authentication_by_header_query_or_first_message(
    server: Server, git: Git, tmp_path: Path
) -> None:
    alice = await server.user("alice")
    await server.repo(alice, "secret", private=True)
    _, token = await create_token(server.ctx, alice, name="ws", scopes="read")
    pusher = Pusher(server, git, tmp_path / "w", "alice/secret", "alice")
    await pusher.init()
    async with (
        subscriber(server, token, ["alice/secret"]) as by_header,
        subscriber(server, query=f"?access_token={token}", repos=["alice/secret"]) as by_query,
        subscriber(server, subscribe=False) as by_message,
    ):
        await by_message.send({"type": "auth", "token": token})
        assert (await by_message.next()) == {"type": "authenticated", "user": "alice"}
        await by_message.subscribe(["alice/secret"])
        await pusher.push()
        for sub in (by_header, by_query, by_message):
            assert [e["event"] for e in await sub.wait_for(2)] == ["push", "branch.created"]

    async with aiohttp.ClientSession() as http:
        url = server.url.replace("http://", "ws://") + "/api/v1/events?access_token=nope"
        try:
            async with http.ws_connect(url):
                raise AssertionError("a bad access_token was accepted")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 401
        async with subscriber(server, subscribe=False) as sub:
            await sub.send({"type": "auth", "token": "ghp_wrong"})
            message = await sub.ws.receive(timeout=60)
            assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1008


async def test_bad_messages_get_errors_and_the_socket_stays(server: Server) -> None:
    async with subscriber(server, subscribe=False) as sub:
        await sub.ws.send_str("not json")
        await sub.send({"type": "subscribe", "repos": ["../etc"]})
        await sub.send({"type": "subscribe", "repos": ["a/b"], "since_id": "x"})
        await sub.send({"type": "dance"})
        await sub.sync()
        assert [m["type"] for m in sub.other] == ["error"] * 4 + ["pong"]
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/api/v1/events") as resp:
            assert resp.status == 426


def _python() -> list[str]:
    return [sys.executable]


def _cli_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}


async def test_an_event_recorded_as_private_is_rechecked_even_without_a_notice(
    server: Server, git: Git, tmp_path: Path
) -> None:
    """Belt and braces: a path that changes visibility but forgets access_changed() still
    does not leak, because the event itself records that the repository is private."""
    alice, bob = await server.user("alice"), await server.user("bob")
    repo = await server.repo(alice, "quiet")
    await server.repo(alice, "open")
    bob_token = await server.token(bob)
    quiet = Pusher(server, git, tmp_path / "q", "alice/quiet", "alice")
    opened = Pusher(server, git, tmp_path / "o", "alice/open", "alice")
    await quiet.init()
    await opened.init()
    async with subscriber(server, bob_token, ["alice/quiet", "alice/open"]) as stranger:
        await quiet.push()
        await stranger.until("alice/quiet", "branch.created")  # access to it is cached now
        await server.ctx.store.update_repo(repo.id, private=True)  # no notice on purpose
        await quiet.commit_and_push("now private")
        await opened.push()
        assert {e["repo"] for e in await stranger.until("alice/open")} == {"alice/open"}
