"""What a ref update brought: new commits (bounded) and whether it was forced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.git.process import GitConfig, run_git

ZERO_SHA = "0" * 40


@dataclass(frozen=True, slots=True)
class PushedCommit:
    sha: str
    message: str
    author_name: str
    author_email: str
    timestamp: str


async def is_ancestor(git: GitConfig, repo: Path, old: str, new: str) -> bool:
    code, _, _ = await run_git(
        git, ["merge-base", "--is-ancestor", old, new], git_dir=repo, check=False
    )
    return code == 0


async def new_commits(
    git: GitConfig, repo: Path, ref: str, old: str, new: str, limit: int = 20
) -> list[PushedCommit]:
    """Commits the update made reachable from ref, oldest first, the newest `limit` of them.

    old/new are SHAs from git's own hook report; ref only appears inside --exclude=.
    """
    args = ["log", "-z", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B", f"--max-count={limit}", new]
    if old != ZERO_SHA:
        args.append(f"^{old}")
    else:
        # A new ref: what no other ref reaches is new (--exclude applies to the next
        # --glob; not --all, which also takes HEAD, and HEAD may be this very branch).
        args += ["--not", f"--exclude={ref}", "--glob=refs/*"]
    code, out, _ = await run_git(git, args, git_dir=repo, check=False)
    if code != 0:
        return []
    commits = []
    for record in out.split(b"\x00"):
        fields = record.decode("utf-8", "replace").split("\x1f")
        if len(fields) == 5:
            sha, name, email, date, message = fields
            commits.append(PushedCommit(sha, message.rstrip("\n"), name, email, date))
    commits.reverse()
    return commits
