"""Smart HTTP with the real git client: the access rules of CONTRACT §3, protocol v0/v2,
shallow and partial clones, concurrent clones."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.smart_http_world import World, http_headers, http_statuses, world

__all__ = ["world"]


# Reading ------------------------------------------------------------------------------


async def test_anonymous_clone_of_public_repository(world: World) -> None:
    code, err, target = await world.clone(world.url("alice/pub"), "c")
    assert code == 0, err
    assert await world.head(target) == world.pub_sha
    assert (target / "README.md").read_text() == "public\n"


async def test_url_without_git_suffix_and_other_case(world: World) -> None:
    url = world.url("ALICE/Pub").removesuffix(".git")
    code, err, target = await world.clone(url, "c")
    assert code == 0, err
    assert await world.head(target) == world.pub_sha


async def test_private_clone_with_password(world: World) -> None:
    code, err, target = await world.clone(world.url("alice/priv", "alice"), "c")
    assert code == 0, err
    assert (target / "secret.txt").read_text() == "private\n"


@pytest.mark.parametrize("login", ["alice", "x-access-token"])
async def test_private_clone_with_token(world: World, login: str) -> None:
    """`user:TOKEN` with any user name works, as on GitHub."""
    token = await world.server.token(world.alice, "read")
    code, err, target = await world.clone(world.url("alice/priv", login, token), "c")
    assert code == 0, err
    assert await world.head(target) == world.priv_sha


@pytest.mark.parametrize("password", ["x-oauth-basic", ""])
async def test_private_clone_with_token_as_user_name(world: World, password: str) -> None:
    """GitHub's other form: `https://TOKEN:x-oauth-basic@host/...`."""
    token = await world.server.token(world.alice, "read")
    url = world.server.git_url("alice/priv").replace("http://", f"http://{token}:{password}@")
    code, err, target = await world.clone(url, "c")
    assert code == 0, err
    assert await world.head(target) == world.priv_sha


async def test_private_clone_by_read_collaborator(world: World) -> None:
    code, err, _ = await world.clone(world.url("alice/priv", "rita"), "c")
    assert code == 0, err


async def test_private_clone_anonymous_is_401(world: World) -> None:
    code, err, _ = await world.clone(world.url("alice/priv"), "c", GIT_CURL_VERBOSE="1")
    assert code != 0
    assert http_statuses(err) == [401]
    assert ("www-authenticate", 'Basic realm="githost", charset="UTF-8"') in http_headers(err)
    assert "terminal prompts disabled" in err or "Authentication failed" in err


async def test_private_clone_by_stranger_is_404(world: World) -> None:
    code, err, _ = await world.clone(world.url("alice/priv", "mallory"), "c")
    assert code != 0
    assert "not found" in err.lower()


async def test_missing_repository_answers_like_private(world: World) -> None:
    _, anon_missing, _ = await world.clone(world.url("alice/nothing"), "a", GIT_CURL_VERBOSE="1")
    assert http_statuses(anon_missing) == [401]
    code, err, _ = await world.clone(world.url("alice/nothing", "mallory"), "b")
    assert code != 0 and "not found" in err.lower()


async def test_wrong_password_is_refused(world: World) -> None:
    code, err, _ = await world.clone(world.url("alice/priv", "alice", "wrong-password"), "c")
    assert code != 0
    assert "Authentication failed" in err


async def test_token_with_bad_secret_is_refused(world: World) -> None:
    code, err, _ = await world.clone(world.url("alice/priv", "alice", "ghp_" + "x" * 43), "c")
    assert code != 0
    assert "Authentication failed" in err


# Pushing ------------------------------------------------------------------------------


async def _commit_on_top(world: World, repo: str, name: str) -> tuple[str, str]:
    """Clone repo as alice, add a commit; returns (worktree path, new sha)."""
    code, err, work = await world.clone(world.url(repo, "alice"), name)
    assert code == 0, err
    (work / f"{name}.txt").write_text(f"{name}\n")
    (await world.git("add", "-A", cwd=work)).check()
    (await world.git("commit", "-q", "-m", name, cwd=work)).check()
    return str(work), await world.head(work)


async def test_push_with_write_permission(world: World) -> None:
    for login in ("alice", "wendy"):
        work, sha = await _commit_on_top(world, "alice/priv", f"w-{login}")
        result = await world.git("push", world.url("alice/priv", login), "main", cwd=work)
        assert result.code == 0, result.err
        refs = await world.git("ls-remote", str(world.bare(world.priv)), "refs/heads/main")
        assert refs.check().out.split()[0] == sha


async def test_push_with_write_token(world: World) -> None:
    token = await world.server.token(world.alice, "write")
    work, sha = await _commit_on_top(world, "alice/pub", "tok")
    result = await world.git("push", world.url("alice/pub", "anyone", token), "main", cwd=work)
    assert result.code == 0, result.err
    refs = await world.git("ls-remote", str(world.bare(world.pub)), "refs/heads/main")
    assert refs.check().out.split()[0] == sha


async def test_push_by_read_collaborator_is_403(world: World) -> None:
    work, _ = await _commit_on_top(world, "alice/priv", "ro")
    env = {"GIT_CURL_VERBOSE": "1"}
    result = await world.git("push", world.url("alice/priv", "rita"), "main", cwd=work, env=env)
    assert result.code != 0
    assert http_statuses(result.err)[-1] == 403
    refs = await world.git("ls-remote", str(world.bare(world.priv)), "refs/heads/main")
    assert refs.check().out.split()[0] == world.priv_sha


async def test_push_with_read_only_token_is_403(world: World) -> None:
    token = await world.server.token(world.alice, "read")
    work, _ = await _commit_on_top(world, "alice/pub", "rotok")
    env = {"GIT_CURL_VERBOSE": "1"}
    url = world.url("alice/pub", "alice", token)
    result = await world.git("push", url, "main", cwd=work, env=env)
    assert result.code != 0
    assert http_statuses(result.err)[-1] == 403


async def test_push_anonymous_is_401(world: World) -> None:
    work, _ = await _commit_on_top(world, "alice/pub", "anon")
    env = {"GIT_CURL_VERBOSE": "1"}
    result = await world.git("push", world.url("alice/pub"), "main", cwd=work, env=env)
    assert result.code != 0
    assert http_statuses(result.err) == [401]
    refs = await world.git("ls-remote", str(world.bare(world.pub)), "refs/heads/main")
    assert refs.check().out.split()[0] == world.pub_sha


async def test_push_by_stranger_to_public_is_403(world: World) -> None:
    work, _ = await _commit_on_top(world, "alice/pub", "stranger")
    env = {"GIT_CURL_VERBOSE": "1"}
    result = await world.git("push", world.url("alice/pub", "mallory"), "main", cwd=work, env=env)
    assert result.code != 0
    assert http_statuses(result.err)[-1] == 403


async def test_push_runs_server_hooks_and_reports_refs(world: World) -> None:
    """Pushed ref updates arrive through the server-owned post-receive hook."""
    work, sha = await _commit_on_top(world, "alice/pub", "hooked")
    (await world.git("tag", "v1", cwd=work)).check()
    url = world.url("alice/pub", "alice")
    (await world.git("push", url, "main", "v1", "main:refs/heads/side", cwd=work)).check()
    events = await world.server.ctx.store.list_events([world.pub.id])
    kinds = [(e.type, e.payload) for e in events]
    assert [k for k, _ in kinds].count("push") == 2
    assert any(k == "tag.created" and sha in p for k, p in kinds)
    assert any(k == "branch.created" and "refs/heads/side" in p for k, p in kinds)
    # A repository's own hooks are never run.
    bare = world.bare(world.pub)
    hook = bare / "hooks" / "post-receive"
    marker = world.tmp / "own-hook-ran"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (await world.git("commit", "-q", "--allow-empty", "-m", "again", cwd=work)).check()
    (await world.git("push", url, "main", cwd=work)).check()
    assert not marker.exists()


# Protocols and clone shapes ----------------------------------------------------------


@pytest.mark.parametrize("version", ["0", "2"])
async def test_protocol_versions(world: World, version: str) -> None:
    env = {"GIT_TRACE_PACKET": "1"}
    args = ("-c", f"protocol.version={version}")
    ls = await world.git(*args, "ls-remote", world.url("alice/pub"), env=env)
    ls.check()
    assert f"{world.pub_sha}\trefs/heads/main" in ls.out
    if version == "2":
        assert "< version 2" in ls.err
        assert "> command=ls-refs" in ls.err
    else:
        assert "version 2" not in ls.err
        assert "command=" not in ls.err
    target = world.tmp / f"v{version}"
    clone = await world.git(*args, "clone", world.url("alice/priv", "alice"), str(target), env=env)
    clone.check()
    assert ("> command=fetch" in clone.err) == (version == "2")
    assert await world.head(target) == world.priv_sha


@pytest.mark.parametrize("version", ["0", "2"])
async def test_clone_of_an_empty_repository(world: World, version: str) -> None:
    await world.server.repo(world.alice, "empty", private=True)
    target = world.tmp / f"empty{version}"
    url = world.url("alice/empty", "alice")
    result = await world.git("-c", f"protocol.version={version}", "clone", url, str(target))
    result.check()
    assert "empty repository" in result.err
    (target / "a.txt").write_text("first\n")
    (await world.git("add", "a.txt", cwd=target)).check()
    (await world.git("commit", "-q", "-m", "first", cwd=target)).check()
    (await world.git("push", "-q", "origin", "main", cwd=target)).check()
    ls = await world.git("ls-remote", url)
    assert f"{await world.head(target)}\tHEAD" in ls.check().out


async def test_shallow_clone_depth_1(world: World) -> None:
    base = world.tmp / "seed-pub"
    for n in range(3):
        (base / f"f{n}").write_text(f"{n}\n")
        (await world.git("add", "-A", cwd=base)).check()
        (await world.git("commit", "-q", "-m", f"c{n}", cwd=base)).check()
    (await world.git("push", "-q", str(world.bare(world.pub)), "main", cwd=base)).check()
    for version in ("0", "2"):
        target = world.tmp / f"shallow{version}"
        url = world.url("alice/pub")
        result = await world.git(
            "-c", f"protocol.version={version}", "clone", "-q", "--depth", "1", url, str(target)
        )
        result.check()
        count = await world.git("rev-list", "--count", "HEAD", cwd=target)
        assert count.check().out.strip() == "1"
        assert (target / ".git" / "shallow").exists()
        # Deepen over HTTP too.
        (await world.git("fetch", "-q", "--deepen", "2", cwd=target)).check()
        count = await world.git("rev-list", "--count", "HEAD", cwd=target)
        assert count.check().out.strip() == "3"


async def test_partial_clone_blob_none(world: World) -> None:
    base = world.tmp / "seed-pub"
    (base / "big.bin").write_bytes(b"x" * 100_000 + b"unique-blob")
    (await world.git("add", "-A", cwd=base)).check()
    (await world.git("commit", "-q", "-m", "big", cwd=base)).check()
    (await world.git("rm", "-q", "big.bin", cwd=base)).check()
    (await world.git("commit", "-q", "-m", "drop big", cwd=base)).check()
    (await world.git("push", "-q", str(world.bare(world.pub)), "main", cwd=base)).check()
    target = world.tmp / "partial"
    result = await world.git(
        "clone", "-q", "--filter=blob:none", world.url("alice/pub"), str(target)
    )
    result.check()
    config = await world.git("config", "remote.origin.partialclonefilter", cwd=target)
    assert config.check().out.strip() == "blob:none"
    # The old blob is missing locally and fetched lazily on demand.
    missing = await world.git("rev-list", "--objects", "--missing=print", "--all", cwd=target)
    assert any(line.startswith("?") for line in missing.check().out.splitlines())
    shown = await world.git("show", "HEAD~1:big.bin", cwd=target)
    assert shown.check().out.endswith("unique-blob")


async def test_four_concurrent_clones(world: World) -> None:
    seeded = world.tmp / "seed-priv"
    for n in range(20):
        (seeded / f"file{n}.txt").write_text(f"content {n}\n" * 1000)
    (await world.git("add", "-A", cwd=seeded)).check()
    (await world.git("commit", "-q", "-m", "more", cwd=seeded)).check()
    (await world.git("push", "-q", str(world.bare(world.priv)), "main", cwd=seeded)).check()
    sha = await world.head(seeded)
    token = await world.server.token(world.alice, "read")
    urls = [
        world.url("alice/priv", "alice"),
        world.url("alice/priv", "rita"),
        world.url("alice/priv", "t", token),
        world.url("alice/pub"),
    ]
    results = await asyncio.gather(
        *(world.clone(url, f"cc{n}") for n, url in enumerate(urls)),
    )
    for (code, err, target), url in zip(results, urls, strict=True):
        assert code == 0, err
        expected = world.pub_sha if url.endswith("/alice/pub.git") else sha
        assert await world.head(target) == expected


async def test_fetch_after_push_by_other_user(world: World) -> None:
    """A clone fetches what a collaborator pushed since (incremental negotiation)."""
    code, err, reader = await world.clone(world.url("alice/priv", "rita"), "reader")
    assert code == 0, err
    work, sha = await _commit_on_top(world, "alice/priv", "by-wendy")
    (await world.git("push", world.url("alice/priv", "wendy"), "main", cwd=work)).check()
    (await world.git("fetch", "-q", "origin", cwd=reader)).check()
    assert await world.head(reader, "origin/main") == sha
