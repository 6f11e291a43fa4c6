"""Trees: parsing tree objects from a reader, walking a path, listing recursively.

Paths are looked up by walking trees one component at a time through the reader, so
no path text ever reaches git (cat-file exits on some path forms, SECURITY-NOTES 5).
A recursive listing streams `git ls-tree -r -t -l -z` and stops at the caller's limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.git.names import SHA_RE
from app.git.process import GitConfig, GitError, reading_git, stream_git
from app.git.reader import CatFile

MAX_TREE_OBJECT = 64 * 1024 * 1024
_TYPES = {"40000": "tree", "160000": "commit"}


@dataclass(frozen=True, slots=True)
class TreeEntry:
    mode: str  # as GitHub shows it: 100644, 100755, 040000, 120000, 160000
    type: str  # blob, tree or commit (a submodule)
    sha: str
    path: str
    size: int | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def parse_tree(data: bytes, prefix: str = "") -> list[TreeEntry]:
    """A raw tree object: `<mode> <name>\\0<20-byte id>` repeated."""
    entries = []
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\x00", space)
        mode = data[pos:space].decode("ascii")
        name = _decode(data[space + 1 : nul])
        sha = data[nul + 1 : nul + 21].hex()
        pos = nul + 21
        kind = _TYPES.get(mode, "blob")
        entries.append(TreeEntry(mode.rjust(6, "0"), kind, sha, prefix + name))
    return entries


async def read_tree(cat: CatFile, sha: str, prefix: str = "") -> list[TreeEntry] | None:
    """A tree's entries (parsed trees are cached with the reader's objects)."""
    key = (cat.cache_key, "tree", sha, prefix)
    if cat.cache is not None:
        hit = cat.cache.get(key)
        if isinstance(hit, list):
            return list(hit)
    got = await cat.read(sha, MAX_TREE_OBJECT)
    if got is None or got[0].type != "tree":
        return None
    entries = parse_tree(got[1], prefix)
    if cat.cache is not None and got[0].sha == sha:
        cat.cache.put(key, entries, 3 * got[0].size + 120 * len(entries))
    return list(entries)


async def with_sizes(cat: CatFile, entries: Sequence[TreeEntry]) -> list[TreeEntry]:
    """Fill in blob sizes with one pipelined round of `info` requests."""
    blobs = [e for e in entries if e.type == "blob"]
    infos = await cat.info_many([e.sha for e in blobs])
    sizes = {e.sha: i.size for e, i in zip(blobs, infos, strict=True) if i is not None}
    return [
        TreeEntry(e.mode, e.type, e.sha, e.path, sizes.get(e.sha)) if e.type == "blob" else e
        for e in entries
    ]


async def lookup(cat: CatFile, root_tree: str, path: str) -> TreeEntry | None:
    """The entry at `path` (validated, `/`-separated) under root_tree; '' is the root."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return TreeEntry("040000", "tree", root_tree, "")
    tree_sha = root_tree
    prefix = ""
    for index, part in enumerate(parts):
        entries = await read_tree(cat, tree_sha, prefix)
        if entries is None:
            return None
        found = next((e for e in entries if e.name == part), None)
        if found is None:
            return None
        if index == len(parts) - 1:
            return found
        if found.type != "tree":
            return None
        tree_sha = found.sha
        prefix = found.path + "/"
    return None


@dataclass
class Listing:
    entries: list[TreeEntry]
    truncated: bool


async def list_recursive(
    git: GitConfig, git_dir: Path, tree_sha: str, *, max_entries: int, max_bytes: int
) -> Listing:
    """Every entry under a tree, streamed; stops (truncated) past max_entries or max_bytes.

    max_bytes bounds an estimate of the JSON the caller will render (GitHub: 7 MB).
    """
    if not SHA_RE.match(tree_sha):
        raise ValueError("tree id expected")
    args = ["ls-tree", "-r", "-t", "-l", "-z", "--full-tree", tree_sha]
    entries: list[TreeEntry] = []
    budget = max_bytes
    truncated = False
    async with reading_git(git, args, git_dir=git_dir) as output:
        while True:
            try:
                record = await output.stdout.readuntil(b"\x00")
            except asyncio.IncompleteReadError as end:
                if end.partial:
                    raise GitError(args, -1, b"truncated ls-tree output") from end
                break
            entry = _parse_ls_tree(record[:-1])
            budget -= 200 + 2 * len(entry.path)
            if len(entries) >= max_entries or budget < 0:
                truncated = True
                break
            entries.append(entry)
        if not truncated:
            await output.finish()
    return Listing(entries, truncated)


def _parse_ls_tree(record: bytes) -> TreeEntry:
    meta, _, path = record.partition(b"\t")
    mode, kind, sha, size = meta.decode("ascii").split(maxsplit=3)
    size_value = int(size) if size.strip().isdigit() else None
    return TreeEntry(mode.rjust(6, "0"), kind, sha, _decode(path), size_value)


def blob_chunks(git: GitConfig, git_dir: Path, sha: str) -> AsyncIterator[bytes]:
    """A blob's bytes as `git cat-file blob` streams them (for blobs too big to hold)."""
    if not SHA_RE.match(sha):
        raise ValueError("blob id expected")
    return stream_git(git, ["cat-file", "blob", sha], git_dir=git_dir)
