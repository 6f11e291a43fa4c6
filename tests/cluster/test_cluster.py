"""Several instances as one: two real server processes (A, B) sharing PostgreSQL, Redis and
one repositories directory, with nginx in front (the example site of deploy/).

Every check goes through the balancer and directly to each instance. No timed
assertions: waits are generous bounds, speed is measured by bench/cluster_bench.py.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.conftest import ANONYMOUS_LIMIT
from tests.cluster.launcher import PASSWORD, Cluster, basic_header
from tests.cluster.world import (
    Account,
    HeldPush,
    PackStream,
    World,
    pack_between,
    pack_is_complete,
    random_blob,
)
from tests.helpers import Git

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.redis]

BIG = 24 * 1024 * 1024  # incompressible: far more than every socket and pipe buffer


@pytest.fixture
async def world(cluster: Cluster, admin_token: str, cluster_git: Git) -> AsyncIterator[World]:
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield World(cluster, session, cluster_git, Account("root", admin_token))


async def _pushed_repo(world: World, owner: Account, name: str, work: Path) -> tuple[str, str]:
    full = await world.repo(owner, name)
    tree = work / f"{name}-src"
    sha = await world.worktree(tree, {"README.md": f"# {name}\n"})
    (await world.run_git(owner, "push", "-q", world.remote("a", full), "main", cwd=tree)).check()
    return full, sha


def _client_address() -> dict[str, str]:
    """A client address of one request's own (believed from the trusted 127.0.0.1)."""
    return {"X-Forwarded-For": f"198.18.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"}


def _ids(events: list[dict[str, object]]) -> list[int]:
    return [int(str(e["id"])) for e in events]


async def test_push_through_a_clone_through_b_and_the_balancer(
    world: World, name: str, work: Path
) -> None:
    alice = await world.account(name)
    full, sha = await _pushed_repo(world, alice, "hello", work)
    for where in ("b", "lb"):
        dest = work / f"clone-{where}"
        (await world.run_git(alice, "clone", "-q", world.remote(where, full), str(dest))).check()
        assert (await world.git("rev-parse", "HEAD", cwd=dest)).check().out.strip() == sha
        assert (dest / "README.md").read_text() == "# hello\n"
    # Warm every instance's readers, then push through B: A must not answer from a
    # stale view of the shared disk (its pooled cat-file readers see the new pack).
    for where in ("a", "b"):
        status, body = await world.api(where, "GET", f"/api/v1/repos/{full}/branches/main", alice)
        assert status == 200 and body["commit"]["sha"] == sha, body
    tree = work / "hello-src"
    second = await world.commit(tree, {"two.txt": "2\n"}, "two")
    (await world.run_git(alice, "push", "-q", world.remote("b", full), "main", cwd=tree)).check()
    for where in ("a", "b", "lb"):
        assert (await world.ls_remote(alice, where, full))["refs/heads/main"] == second
        status, body = await world.api(where, "GET", f"/api/v1/repos/{full}", alice)
        assert status == 200, body
        assert body["full_name"] == full and body["private"] is True
        status, body = await world.api(where, "GET", f"/api/v1/repos/{full}/branches/main", alice)
        assert status == 200 and body["commit"]["sha"] == second, (where, body)
        status, raw = await world.api(where, "GET", f"/api/v1/repos/{full}/contents/two.txt", alice)
        assert status == 200 and raw["sha"] and raw["size"] == 2, (where, raw)


async def test_the_same_answers_from_every_instance(world: World, name: str) -> None:
    alice = await world.account(name)
    full = await world.repo(alice, "same")
    answers = []
    for where in ("a", "b", "lb"):
        async with world.session.get(
            f"{world.url(where)}/api/v1/repos/{full}", headers=alice.headers
        ) as resp:
            assert resp.status == 200
            # URLs are built from the request's own host: the only allowed difference.
            answers.append((await resp.text()).replace(world.url(where), "BASE"))
    assert answers[0] == answers[1] == answers[2]
    # Missing is missing everywhere; anonymous gets the same 401 challenge everywhere.
    for where in ("a", "b", "lb"):
        status, _ = await world.api(where, "GET", f"/api/v1/repos/{full}-nope", alice)
        assert status == 404
        async with world.session.get(
            f"{world.remote(where, full)}/info/refs", params={"service": "git-upload-pack"}
        ) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_subscriber_on_b_receives_a_push_made_through_a(
    world: World, name: str, work: Path
) -> None:
    alice = await world.account(name)
    full, _ = await _pushed_repo(world, alice, "live", work)
    tree = work / "live-src"
    async with (
        world.subscriber("b", alice, [full]) as on_b,
        world.subscriber("lb", alice, [full]) as on_lb,
    ):
        pushed = []
        for n, where in enumerate(("a", "a", "lb")):
            pushed.append(await world.commit(tree, {f"f{n}.txt": str(n)}, f"commit {n}"))
            remote = world.remote(where, full)
            (await world.run_git(alice, "push", "-q", remote, "main", cwd=tree)).check()
        received_b = await on_b.wait_for(3)
        received_lb = await on_lb.wait_for(3)
    assert [e["event"] for e in received_b] == ["push"] * 3
    assert [e["payload"]["after"] for e in received_b] == pushed
    ids = _ids(received_b)
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert _ids(received_lb) == ids
    # Stored before sent: every instance lists them, in the same order, with the same ids.
    for where in ("a", "b"):
        stored = [e for e in await world.events(where, alice, full) if e["event"] == "push"]
        assert _ids(stored)[-3:] == ids


async def test_concurrent_pushes_on_both_instances_arrive_in_id_order(
    world: World, name: str, work: Path
) -> None:
    alice = await world.account(name)
    full, _ = await _pushed_repo(world, alice, "busy", work)
    tree = work / "busy-src"
    for n in range(6):
        (await world.git("branch", f"topic-{n}", cwd=tree)).check()

    async def push(n: int) -> None:
        where = "a" if n % 2 else "b"
        remote = world.remote(where, full)
        (await world.run_git(alice, "push", "-q", remote, f"topic-{n}", cwd=tree)).check()

    async with world.subscriber("lb", alice, [full]) as sub:
        await asyncio.gather(*(push(n) for n in range(6)))
        # Each new branch: one push event and one branch.created event.
        received = await sub.wait_for(12)
    ids = _ids(received)
    assert ids == sorted(ids), f"delivered out of id order: {ids}"
    assert len(set(ids)) == len(ids) == 12
    stored = await world.events("b", alice, full)
    assert _ids(stored)[-12:] == ids, "a live subscriber missed or reordered stored events"


async def test_replay_across_instances_then_live_without_gap_or_duplicate(
    world: World, name: str, work: Path
) -> None:
    alice = await world.account(name)
    full, _ = await _pushed_repo(world, alice, "replay", work)
    tree = work / "replay-src"
    for n in range(3):
        await world.commit(tree, {f"r{n}.txt": str(n)}, f"replay {n}")
        remote = world.remote("a", full)
        (await world.run_git(alice, "push", "-q", remote, "main", cwd=tree)).check()
    stored = await world.events("a", alice, full)
    assert len(stored) >= 5  # created, first push (+ branch.created), three pushes
    since = int(stored[1]["id"])
    expected = _ids(stored)[2:]
    async with world.subscriber("b", alice, [full], since_id=since) as sub:
        replayed = await sub.wait_for(len(expected))
        assert _ids(replayed) == expected
        # Live after the replay, from the other instance: no gap, no duplicate.
        last = await world.commit(tree, {"live.txt": "live"}, "live")
        remote = world.remote("a", full)
        (await world.run_git(alice, "push", "-q", remote, "main", cwd=tree)).check()
        received = await sub.wait_for(len(expected) + 1)
    assert received[-1]["payload"]["after"] == last
    ids = _ids(received)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_rate_limit_is_shared_by_the_instances(world: World, name: str) -> None:
    alice = await world.account(name)
    full = await world.repo(alice, "limited", private=False)
    # Authenticated: one counter per user, whichever instance counts.
    remaining = []
    for where in ("a", "b", "lb", "a", "b"):
        async with world.session.get(
            f"{world.url(where)}/api/v1/repos/{full}", headers=alice.headers
        ) as resp:
            assert resp.status == 200
            remaining.append(int(resp.headers["X-RateLimit-Remaining"]))
    assert remaining == list(range(remaining[0], remaining[0] - 5, -1))
    # Anonymous: one counter per client address (X-Forwarded-For from the trusted proxy),
    # spent in turns on A, B and through the balancer, until all three refuse.
    address = f"198.51.100.{secrets.randbelow(250) + 1}"
    seen = []
    for n in range(ANONYMOUS_LIMIT):
        where = ("a", "b", "lb")[n % 3]
        async with world.session.get(
            f"{world.url(where)}/api/v1/repos/{full}", headers={"X-Forwarded-For": address}
        ) as resp:
            assert resp.status == 200, (n, where)
            seen.append(int(resp.headers["X-RateLimit-Remaining"]))
    assert seen == list(range(ANONYMOUS_LIMIT - 1, -1, -1))
    for where in ("a", "b", "lb"):
        async with world.session.get(
            f"{world.url(where)}/api/v1/repos/{full}", headers={"X-Forwarded-For": address}
        ) as resp:
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["message"].startswith("API rate limit exceeded")


async def test_token_revoked_on_a_is_refused_on_b(world: World, name: str, work: Path) -> None:
    alice = await world.account(name)
    full, _ = await _pushed_repo(world, alice, "tokens", work)
    status, body = await world.api(
        "a",
        "POST",
        "/api/v1/user/tokens",
        alice,
        {"name": "short-lived", "scopes": ["read", "write"]},
    )
    assert status == 201, body
    token = Account(alice.login, body["token"])
    token_id = body["id"]
    for where in ("b", "lb"):
        status, body = await world.api(where, "GET", "/api/v1/user", token)
        assert status == 200 and body["login"] == alice.login
    await world.ls_remote(token, "b", full)
    listed = await _tokens(world, alice)
    assert [t["id"] for t in listed if t.get("name") == "short-lived"] == [token_id]
    status, _ = await world.api("a", "DELETE", f"/api/v1/user/tokens/{token_id}", alice)
    assert status == 204
    # Refused credentials count as failed logins of their client address: give these an
    # address of their own (through the trusted balancer) so no other test pays for them.
    client = _client_address()
    for where in ("b", "lb", "a"):
        status, _ = await world.api(where, "GET", "/api/v1/user", token, headers=client)
        assert status == 401, where
    xff = f"http.extraHeader=X-Forwarded-For: {client['X-Forwarded-For']}"
    result = await world.run_git(token, "-c", xff, "ls-remote", world.remote("b", full))
    assert result.code != 0


async def _tokens(world: World, who: Account) -> list[dict[str, object]]:
    status, body = await world.api("b", "GET", "/api/v1/user/tokens", who)
    assert status == 200, body
    assert isinstance(body, list)
    return body


async def test_two_pushes_to_one_branch_through_two_instances(
    world: World, name: str, work: Path
) -> None:
    """git's ref lock is a compare-and-swap on the shared disk: exactly one push wins."""
    alice = await world.account(name)
    full, base = await _pushed_repo(world, alice, "race", work)
    for round_ in range(4):
        trees = []
        for side in ("a", "b"):
            tree = work / f"race-{round_}-{side}"
            (await world.run_git(alice, "clone", "-q", world.remote("lb", full), str(tree))).check()
            sha = await world.commit(tree, {f"{side}.txt": f"{round_}{side}"}, f"{side} {round_}")
            trees.append((side, tree, sha))
        results = await asyncio.gather(
            *(
                world.run_git(alice, "push", "-q", world.remote(side, full), "main", cwd=tree)
                for side, tree, _ in trees
            )
        )
        winners = [sha for (_, _, sha), r in zip(trees, results, strict=True) if r.code == 0]
        assert len(winners) == 1, [r.err for r in results]
        head = (await world.ls_remote(alice, "lb", full))["refs/heads/main"]
        assert head == winners[0]
        pushes = [e for e in await world.events("b", alice, full) if e["event"] == "push"]
        assert pushes[-1]["payload"]["after"] == head
        assert pushes[-1]["payload"]["before"] == base
        losers = {sha for _, _, sha in trees} - {head}
        assert not [p for p in pushes if p["payload"]["after"] in losers]
        base = head
    await _fsck(world, full)
    pushes = [e for e in await world.events("a", alice, full) if e["event"] == "push"]
    assert len(pushes) == 1 + 4  # the first push and one winner per round, nothing else


async def test_creating_the_same_repository_twice_at_once(world: World, name: str) -> None:
    alice = await world.account(name)
    for n in range(5):
        repo = f"twin-{n}"
        results = await asyncio.gather(
            world.create_repo("a", alice, repo), world.create_repo("b", alice, repo)
        )
        statuses = sorted(status for status, _ in results)
        assert statuses == [201, 422], results
        loser = next(body for status, body in results if status == 422)
        assert loser["errors"][0]["code"] == "already_exists"
        full = f"{alice.login}/{repo}"
        assert await world.ls_remote(alice, "lb", full) == {}
        path = world.cluster.data_dir / "repositories" / alice.login / f"{repo}.git"
        assert (path / "HEAD").is_file()
        status, listing = await world.api("b", "GET", "/api/v1/user/repos?per_page=100", alice)
        assert status == 200
        assert [r["name"] for r in listing].count(repo) == 1


async def test_delete_on_a_while_b_serves_a_clone(world: World, name: str, work: Path) -> None:
    alice = await world.account(name)
    full = await world.repo(alice, "doomed")
    tree = work / "doomed-src"
    sha = await world.worktree(tree, {"big.bin": random_blob(BIG)})
    (await world.run_git(alice, "push", "-q", world.remote("a", full), "main", cwd=tree)).check()
    path = world.cluster.data_dir / "repositories" / alice.login / "doomed.git"
    assert path.is_dir()

    stream = await PackStream.open(
        world.session, world.remote("b", full), sha, alice, work / "got.pack"
    )
    try:
        await stream.read_some(256 * 1024)
        assert not stream.finished
        status, _ = await world.api("a", "DELETE", f"/api/v1/repos/{full}", alice)
        assert status == 204
        # Nothing is left half-deleted: the directory is gone, the trash is empty.
        assert not path.exists()
        assert not any((world.cluster.data_dir / "trash").glob("doomed.git*"))
        with _nothing():
            await stream.read_rest()
    finally:
        stream.close()
    # The clone either completed with a valid pack or failed cleanly (a cut stream).
    complete = stream.finished and await pack_is_complete(world.git, stream.out, work / "x.git")
    assert complete or not stream.finished
    for where in ("a", "b", "lb"):
        status, _ = await world.api(where, "GET", f"/api/v1/repos/{full}", alice)
        assert status == 404
        assert (await world.run_git(alice, "ls-remote", world.remote(where, full))).code != 0
    # The name is free again, and B serves the new, empty repository (nothing cached).
    status, body = await world.create_repo("b", alice, "doomed")
    assert status == 201, body
    for where in ("a", "b", "lb"):
        assert await world.ls_remote(alice, where, full) == {}
        status, branches = await world.api(where, "GET", f"/api/v1/repos/{full}/branches", alice)
        assert status == 200 and branches == []


class _nothing:
    """A context manager that lets a cut stream's error through as 'failed cleanly'."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, aiohttp.ClientError | asyncio.IncompleteReadError)


async def test_killing_a_mid_clone_leaves_b_serving_and_the_repository_consistent(
    world: World, cluster: Cluster, name: str, work: Path
) -> None:
    alice = await world.account(name)
    full = await world.repo(alice, "survivor")
    tree = work / "survivor-src"
    sha = await world.worktree(tree, {"big.bin": random_blob(BIG)})
    (await world.run_git(alice, "push", "-q", world.remote("b", full), "main", cwd=tree)).check()
    port = cluster.instances["a"].port

    stream = await PackStream.open(
        world.session, world.remote("a", full), sha, alice, work / "cut.pack"
    )
    try:
        await stream.read_some(256 * 1024)
        assert not stream.finished
        cluster.kill("a", signal.SIGKILL)
        with _nothing():
            await stream.read_rest()
    finally:
        stream.close()
    assert not stream.finished, "the stream from a killed instance cannot have completed"
    try:
        # B serves, directly and through the balancer (which skips the dead instance).
        for where in ("b", "lb", "lb"):
            dest = work / f"after-{where}-{secrets.token_hex(3)}"
            clone = await world.run_git(alice, "clone", "-q", world.remote(where, full), str(dest))
            clone.check()
            assert (await world.git("rev-parse", "HEAD", cwd=dest)).check().out.strip() == sha
        status, _ = await world.api("lb", "GET", f"/api/v1/repos/{full}", alice)
        assert status == 200
        await _fsck(world, full)
        # A push cut by the kill of its instance leaves garbage at most, never corruption.
        cluster.start_instance("a", port=port)
        more = await world.commit(tree, {"more.bin": random_blob(BIG // 2)}, "more")
        push = asyncio.ensure_future(
            world.run_git(alice, "push", "-q", world.remote("a", full), "main", cwd=tree)
        )
        await _until_receiving(cluster, alice.login, "survivor")
        cluster.kill("a", signal.SIGKILL)
        await push
        head = (await world.ls_remote(alice, "b", full))["refs/heads/main"]
        assert head in (sha, more)
        await _fsck(world, full)
        remote_b = world.remote("b", full)
        (await world.run_git(alice, "push", "-q", remote_b, "main", cwd=tree)).check()
        assert (await world.ls_remote(alice, "lb", full))["refs/heads/main"] == more
        await _fsck(world, full)
    finally:
        if not cluster.instances["a"].alive():
            cluster.start_instance("a", port=port)
    # A is back on its port: it serves again, directly and through the balancer.
    assert (await world.ls_remote(alice, "a", full))["refs/heads/main"] == more


async def _until_receiving(cluster: Cluster, owner: str, repo: str) -> None:
    """Until a push's quarantine folder exists (receive-pack is taking the pack in), or the
    push is already over; a bounded wait."""
    objects = cluster.data_dir / "repositories" / owner / f"{repo}.git" / "objects"
    for _ in range(600):
        if any(objects.glob("tmp_objdir-incoming-*")):
            return
        await asyncio.sleep(0.01)


async def _fsck(world: World, full: str) -> None:
    owner, repo = full.split("/")
    path = world.cluster.data_dir / "repositories" / owner / f"{repo}.git"
    (await world.git("--git-dir", str(path), "fsck", "--strict", "--no-dangling")).check()


async def test_access_removed_on_a_stops_private_events_on_b(
    world: World, name: str, work: Path
) -> None:
    alice = await world.account(name)
    bob = await world.account(f"{name}b")
    secret, _ = await _pushed_repo(world, alice, "secret", work)
    public = await world.repo(alice, "open", private=False)
    path = f"/api/v1/repos/{secret}/collaborators/{bob.login}"
    status, body = await world.api("a", "PUT", path, alice, {"permission": "read"})
    assert status in (201, 204), body
    tree = work / "secret-src"
    async with world.subscriber("b", bob, [secret, public]) as sub:
        first = await world.commit(tree, {"s1.txt": "1"}, "s1")
        (
            await world.run_git(alice, "push", "-q", world.remote("a", secret), "main", cwd=tree)
        ).check()
        got = await sub.wait_for(1)
        assert got[0]["repo"] == secret and got[0]["payload"]["after"] == first
        status, _ = await world.api("a", "DELETE", path, alice)
        assert status == 204
        await world.commit(tree, {"s2.txt": "2"}, "s2")
        (
            await world.run_git(alice, "push", "-q", world.remote("a", secret), "main", cwd=tree)
        ).check()
        # A later event of a public repository: once it arrives, anything of the private
        # one stored before it would have arrived too (delivery is in id order).
        (
            await world.run_git(alice, "push", "-q", world.remote("b", public), "main", cwd=tree)
        ).check()
        await sub.wait_until(lambda e: e["repo"] == public)
    assert [e["repo"] for e in sub.events if e["repo"] == secret] == [secret]


async def test_a_jwt_issued_by_a_is_accepted_by_b(world: World, name: str) -> None:
    """The signing key comes from settings (APP_SECRET_KEY), identical on every instance."""
    alice = await world.account(name)
    status, body = await world.api(
        "a", "POST", "/api/v1/auth/token", None, {"username": alice.login, "password": PASSWORD}
    )
    assert status in (200, 201), body
    bearer = {"Authorization": f"Bearer {body['token']}"}
    for where in ("b", "lb"):
        status, me = await world.api(where, "GET", "/api/v1/user", headers=bearer)
        assert status == 200 and me["login"] == alice.login, (where, me)


async def test_a_graceful_stop_of_a_drains_its_clone_while_b_serves(
    world: World, cluster: Cluster, name: str, work: Path
) -> None:
    """A rolling restart: SIGTERM drains A's clone in flight; the balancer sends new work
    to B meanwhile; A comes back on its port."""
    alice = await world.account(name)
    full = await world.repo(alice, "rolling")
    tree = work / "rolling-src"
    sha = await world.worktree(tree, {"big.bin": random_blob(BIG)})
    (await world.run_git(alice, "push", "-q", world.remote("b", full), "main", cwd=tree)).check()
    port = cluster.instances["a"].port
    stream = await PackStream.open(
        world.session, world.remote("a", full), sha, alice, work / "drained.pack"
    )
    try:
        await stream.read_some(256 * 1024)
        assert not stream.finished
        cluster.instances["a"].proc.send_signal(signal.SIGTERM)
        # While A drains, new clones through the balancer are served (by B).
        for n in range(3):
            dest = work / f"during-{n}"
            clone = await world.run_git(alice, "clone", "-q", world.remote("lb", full), str(dest))
            clone.check()
        await stream.read_rest()
        assert stream.finished
        assert await asyncio.to_thread(cluster.wait, "a") == 0
    finally:
        stream.close()
        if not cluster.instances["a"].alive():
            cluster.start_instance("a", port=port)
    assert await pack_is_complete(world.git, stream.out, work / "d.git")
    assert (await world.ls_remote(alice, "a", full))["refs/heads/main"] == sha


async def test_failed_logins_are_counted_by_all_instances_together(world: World, name: str) -> None:
    alice = await world.account(name)
    address = f"203.0.113.{secrets.randbelow(250) + 1}"
    statuses = []
    for n in range(12):
        where = ("a", "b", "lb")[n % 3]
        status, _ = await world.api(
            where,
            "GET",
            "/api/v1/user",
            headers={
                "Authorization": basic_header(alice.login, f"wrong-{n}"),
                "X-Forwarded-For": address,
            },
        )
        statuses.append(status)
    # APP_AUTH_FAILURE_LIMIT is 10/minute: the limit is reached across instances together.
    assert statuses[:10] == [401] * 10, statuses
    assert statuses[10:] == [429, 429], statuses
    # Other addresses are not locked out, whichever instance they reach.
    for where in ("a", "b"):
        status, _ = await world.api(where, "GET", "/api/v1/user", alice)
        assert status == 200


async def test_an_archive_link_signed_by_a_downloads_from_b(
    world: World, name: str, work: Path
) -> None:
    """Links are signed with the shared secret key, not remembered by one instance."""
    alice = await world.account(name)
    full, sha = await _pushed_repo(world, alice, "archive", work)
    async with world.session.get(
        f"{world.url('a')}/api/v1/repos/{full}/tarball/main",
        headers=alice.headers,
        allow_redirects=False,
    ) as resp:
        assert resp.status == 302
        location = resp.headers["Location"]
    assert location.startswith(world.url("a")) and sha in location
    for where in ("b", "lb"):
        async with world.session.get(location.replace(world.url("a"), world.url(where))) as resp:
            assert resp.status == 200, (where, await resp.text())
            body = await resp.read()
            assert body[:2] == b"\x1f\x8b"  # gzip: a tarball of the private repository


async def test_delete_on_a_while_b_receives_a_push(world: World, name: str, work: Path) -> None:
    """The push B is receiving lands in the trash with the rest of the repository: no
    directory comes back, and no event of the deleted repository follows its deletion."""
    alice = await world.account(name)
    full, base = await _pushed_repo(world, alice, "pushed-away", work)
    tree = work / "pushed-away-src"
    new = await world.commit(tree, {"big.bin": random_blob(BIG // 3)}, "big")
    pack = await pack_between(world.git, tree, base, new)
    held = HeldPush.of(base, new, pack, hold_at=len(pack) // 3)
    path = world.cluster.data_dir / "repositories" / alice.login / "pushed-away.git"
    status, repo = await world.api("a", "GET", f"/api/v1/repos/{full}", alice)
    assert status == 200
    post = asyncio.ensure_future(
        world.session.post(
            f"{world.remote('b', full)}/git-receive-pack",
            data=held.body(),
            headers={
                "Content-Type": "application/x-git-receive-pack-request",
                "Authorization": alice.basic,
            },
        )
    )
    try:
        for _ in range(3000):  # until receive-pack is taking the pack in (bounded)
            if any((path / "objects").glob("tmp_objdir-incoming-*")) or post.done():
                break
            await asyncio.sleep(0.01)
        assert not post.done()
        status, _ = await world.api("a", "DELETE", f"/api/v1/repos/{full}", alice)
        assert status == 204
        assert not path.exists()
    finally:
        held.release.set()
        with _nothing():
            response = await post
            await response.read()
            response.release()
    assert not path.exists(), "the push brought the deleted repository back"
    events = await _stored_events(world, int(repo["id"]))
    assert events[-1] == "repository.deleted", events
    status, _ = await world.api("b", "GET", f"/api/v1/repos/{full}", alice)
    assert status == 404


async def _stored_events(world: World, repo_id: int) -> list[str]:
    """Event types of one repository straight from the shared database (the repository is
    gone, so its events route answers 404)."""
    import asyncpg  # type: ignore[import-untyped]

    dsn = world.cluster.database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT type FROM events WHERE repo_id = $1 ORDER BY id", repo_id)
    finally:
        await conn.close()
    return [row["type"] for row in rows]


async def test_forwarded_for_is_believed_only_from_the_balancer(world: World, name: str) -> None:
    """APP_TRUSTED_PROXIES=127.0.0.1/32: a client on 127.0.0.2 cannot pick its address."""
    alice = await world.account(name)
    full = await world.repo(alice, "proxied", private=False)
    address = f"192.0.2.{secrets.randbelow(250) + 1}"
    spoof = {"X-Forwarded-For": address}
    url = f"/api/v1/repos/{full}"
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as untrusted:
        for where in ("a", "b"):
            async with untrusted.get(world.url(where) + url, headers=spoof) as resp:
                assert resp.status == 200
    # Those two counted against 127.0.0.2, not against the address they named: through
    # the balancer (trusted) that address still has its whole budget.
    async with world.session.get(world.url("lb") + url, headers=spoof) as resp:
        assert resp.status == 200
        assert int(resp.headers["X-RateLimit-Remaining"]) == ANONYMOUS_LIMIT - 1


async def test_a_password_change_is_seen_by_every_instance_at_once(world: World, name: str) -> None:
    """Each instance caches successful password checks for a minute, keyed with the
    stored hash it reads from the shared database on every request: a new password (a
    new hash) voids every instance's cache at the next request."""
    from app.auth.passwords import hash_password_async

    alice = await world.account(name)
    old = {"Authorization": basic_header(alice.login, PASSWORD)}
    for where in ("a", "b", "a", "b"):  # the second round is answered from the caches
        status, _ = await world.api(where, "GET", "/api/v1/user", headers=old)
        assert status == 200
    new_password = "a-brand-new-password"
    await _sql(
        world,
        "UPDATE users SET password_hash = $1 WHERE login_lower = $2",
        await hash_password_async(new_password),
        alice.login.lower(),
    )
    new = {"Authorization": basic_header(alice.login, new_password)}
    for where in ("a", "b", "lb"):
        refused = old | _client_address()  # a failed login: counted for an address of its own
        status, _ = await world.api(where, "GET", "/api/v1/user", headers=refused)
        assert status == 401, where
        status, _ = await world.api(where, "GET", "/api/v1/user", headers=new)
        assert status == 200, where


async def _sql(world: World, statement: str, *args: object) -> None:
    import asyncpg  # type: ignore[import-untyped]

    dsn = world.cluster.database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement, *args)
    finally:
        await conn.close()
