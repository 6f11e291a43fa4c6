"""Bare repositories on disk: create, rename, delete (via trash), size, maintenance."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from app.git.names import is_valid_owner, is_valid_repo, safe_join
from app.git.process import GitConfig, run_git

log = logging.getLogger(__name__)

QUARANTINE_MAX_AGE = 3600.0
SIZE_TTL = 30.0


class RepoStorage:
    """Maps (owner, name) as stored in the database to a directory under root."""

    def __init__(self, root: Path, trash: Path, git: GitConfig):
        self.root = root
        self.trash = trash
        self.git = git
        self._sizes: dict[Path, tuple[float, int]] = {}

    def path(self, owner: str, name: str) -> Path:
        if not is_valid_owner(owner) or not is_valid_repo(name):
            raise ValueError("invalid stored repository name")
        return safe_join(self.root, owner, f"{name}.git")

    async def create(self, owner: str, name: str, default_branch: str = "main") -> Path:
        path = self.path(owner, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            # A leftover without a database row (crash between steps): move it aside.
            await asyncio.to_thread(self._move_to_trash, path)
        await run_git(
            self.git,
            ["init", "--quiet", "--bare", f"--initial-branch={default_branch}", "--", str(path)],
        )
        await asyncio.to_thread(_write_description, path)
        return path

    async def rename(self, owner: str, old: str, new_owner: str, new: str) -> None:
        src, dst = self.path(owner, old), self.path(new_owner, new)
        if src == dst:
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(os.rename, src, dst)

    async def delete(self, owner: str, name: str) -> None:
        """Rename into trash atomically (git work in flight keeps its open files), then remove."""
        path = self.path(owner, name)
        if not path.exists():
            return
        moved = await asyncio.to_thread(self._move_to_trash, path)
        await asyncio.to_thread(shutil.rmtree, moved, True)

    def _move_to_trash(self, path: Path) -> Path:
        self.trash.mkdir(parents=True, exist_ok=True)
        target = self.trash / f"{path.name}.{uuid.uuid4().hex}"
        os.rename(path, target)
        return target

    async def disk_usage_kb(self, owner: str, name: str) -> int:
        """Size on disk, remembered for SIZE_TTL seconds: walking a big repository's
        files on every API read costs more than the read (GitHub's `size` lags too)."""
        path = self.path(owner, name)
        cached = self._sizes.get(path)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        size = await asyncio.to_thread(_du_kb, path)
        if len(self._sizes) > 10_000:
            self._sizes.clear()
        self._sizes[path] = (now + SIZE_TTL, size)
        return size

    async def gc(self, owner: str, name: str, *, prune_now: bool = False) -> None:
        """Repack into one pack with bitmaps and sweep stale push quarantines."""
        path = self.path(owner, name)
        await asyncio.to_thread(sweep_quarantines, path)
        args = ["gc", "--quiet"]
        if prune_now:
            args.append("--prune=now")
            await run_git(self.git, ["reflog", "expire", "--expire=now", "--all"], git_dir=path)
        await run_git(self.git, args, git_dir=path, timeout=3600)
        await run_git(
            self.git,
            ["repack", "-a", "-d", "-q", "--write-bitmap-index"],
            git_dir=path,
            timeout=3600,
        )


def sweep_quarantines(repo: Path, max_age: float = QUARANTINE_MAX_AGE) -> int:
    """Remove `objects/tmp_objdir-incoming-*` left by killed pushes (older than max_age)."""
    removed = 0
    now = time.time()
    for folder in (repo / "objects").glob("tmp_objdir-incoming-*"):
        try:
            if now - folder.stat().st_mtime > max_age:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _write_description(path: Path) -> None:
    (path / "description").write_text("\n")


def _du_kb(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total // 1024
