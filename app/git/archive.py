"""`git archive` of one commit, streamed: the caller writes chunks as git produces them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from app.git.names import SHA_RE
from app.git.process import GitConfig, stream_git

FORMATS = {"tar.gz": "tar.gz", "zip": "zip"}


def archive_chunks(
    git: GitConfig, git_dir: Path, sha: str, fmt: str, prefix: str
) -> AsyncIterator[bytes]:
    """Chunks of the archive of commit `sha` (a full id) with every path under `prefix/`."""
    if not SHA_RE.match(sha) or fmt not in FORMATS:
        raise ValueError("archive of a full commit id in tar.gz or zip only")
    if "/" in prefix or prefix.startswith("-") or not prefix.isprintable():
        raise ValueError("bad archive prefix")
    args = ["archive", f"--format={FORMATS[fmt]}", f"--prefix={prefix}/", sha]
    return stream_git(git, args, git_dir=git_dir)
