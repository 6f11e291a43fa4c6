"""`auto_init`: a first commit written with plumbing straight into a bare repository.

hash-object -> mktree -> commit-tree -> update-ref (create only). No worktree, no index,
no hooks: user text only ever becomes blob content and the commit message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from app.git.names import is_valid_ref
from app.git.process import GitConfig, run_git

ZERO_SHA = "0" * 40
_SAFE_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,255}$")
_SAFE_FILE = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


def identity_env(name: str, email: str | None) -> dict[str, str]:
    """Author and committer for a server-made commit (an unsafe e-mail is replaced)."""
    if not email or not _SAFE_EMAIL.match(email):
        email = f"{name}@users.noreply.localhost"
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


async def write_blob(git: GitConfig, repo: Path, content: bytes) -> str:
    _, out, _ = await run_git(git, ["hash-object", "-w", "--stdin"], git_dir=repo, input=content)
    return out.decode().strip()


async def write_flat_tree(git: GitConfig, repo: Path, blobs: Mapping[str, str]) -> str:
    """A tree of regular files at the top level: {file name: blob sha}."""
    entries = []
    for filename, sha in sorted(blobs.items()):
        if not _SAFE_FILE.match(filename) or filename in (".", "..", ".git"):
            raise ValueError(f"unsafe file name {filename!r}")
        entries.append(f"100644 blob {sha}\t{filename}\n")
    _, out, _ = await run_git(git, ["mktree"], git_dir=repo, input="".join(entries).encode())
    return out.decode().strip()


async def initial_commit(
    git: GitConfig,
    repo: Path,
    branch: str,
    files: Mapping[str, bytes],
    *,
    message: str,
    author: str,
    email: str | None,
) -> str:
    """Commit `files` as the first commit of `branch` (which must not exist yet); its sha."""
    ref = f"refs/heads/{branch}"
    if not is_valid_ref(ref):
        raise ValueError("invalid branch name")
    blobs = {name: await write_blob(git, repo, content) for name, content in files.items()}
    tree = await write_flat_tree(git, repo, blobs)
    _, out, _ = await run_git(
        git,
        ["commit-tree", tree, "-F", "-"],
        git_dir=repo,
        input=message.encode(),
        env=identity_env(author, email),
    )
    commit = out.decode().strip()
    # The zero old value makes this create-only: an existing branch is never moved.
    await run_git(git, ["update-ref", ref, commit, ZERO_SHA], git_dir=repo)
    return commit
