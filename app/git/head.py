"""HEAD of a bare repository: which branch it names, and whether branches exist."""

from __future__ import annotations

from pathlib import Path

from app.git.names import is_valid_ref
from app.git.process import GitConfig, run_git


def _branch_ref(branch: str) -> str:
    ref = f"refs/heads/{branch}"
    if not is_valid_ref(ref):
        raise ValueError("invalid branch name")
    return ref


async def set_head(git: GitConfig, repo: Path, branch: str) -> None:
    """Point HEAD at refs/heads/<branch> (the branch may be unborn in an empty repository)."""
    await run_git(git, ["symbolic-ref", "HEAD", _branch_ref(branch)], git_dir=repo)


async def has_branch(git: GitConfig, repo: Path, branch: str) -> bool:
    code, _, _ = await run_git(
        git, ["show-ref", "--verify", "--quiet", _branch_ref(branch)], git_dir=repo, check=False
    )
    return code == 0


async def has_any_branch(git: GitConfig, repo: Path) -> bool:
    _, out, _ = await run_git(
        git, ["for-each-ref", "--count=1", "--format=%(refname)", "refs/heads/"], git_dir=repo
    )
    return bool(out.strip())
