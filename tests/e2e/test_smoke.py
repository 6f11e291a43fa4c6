"""The first thing a user does: push, then clone anonymously and with credentials."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import PASSWORD, Git, Server


async def test_push_then_clone_public(server: Server, git: Git, tmp_path: Path) -> None:
    alice = await server.user("alice")
    await server.repo(alice, "hello")
    sha = await git.make_worktree(tmp_path / "w", {"README.md": "hello\n"})
    (
        await git(
            "push", server.git_url("alice/hello", "alice", PASSWORD), "main", cwd=tmp_path / "w"
        )
    ).check()
    (await git("clone", "-q", server.git_url("alice/hello"), str(tmp_path / "c"))).check()
    head = (await git("rev-parse", "HEAD", cwd=tmp_path / "c")).check().out.strip()
    assert head == sha
    assert (tmp_path / "c" / "README.md").read_text() == "hello\n"
