"""Reading repositories: refs, branches, tags, contents and trees.

Every call starts from `open_repo` (access through repos.find_repo: missing or not
visible is 404 for everyone, as GitHub answers and as the rest of the API does) and
resolves user refs to full object ids through the reader pool before anything else
touches git.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from app.auth.access import Principal
from app.errors import Forbidden, Invalid, NotFound
from app.git.names import is_valid_ref, is_valid_tree_path
from app.git.process import run_git
from app.git.reader import CatFile, ObjectTooLarge, ReaderPool
from app.git.trees import TreeEntry, list_recursive, lookup, read_tree, with_sizes
from app.services.context import AppContext
from app.services.repos import find_repo
from app.store.records import Repo

HEX_RE = re.compile(r"^[0-9a-f]{4,64}$")
JSON_CONTENT_MAX = 1024 * 1024  # larger files: JSON without content, raw only (GitHub)
RAW_MAX = 100 * 1024 * 1024  # larger files: refused (GitHub)
DIR_MAX_ENTRIES = 1000  # a directory listing shows the first 1,000 entries (GitHub)
TREE_MAX_ENTRIES = 100_000
TREE_MAX_BYTES = 7 * 1024 * 1024


@dataclass(frozen=True)
class RepoHandle:
    """A repository the caller may read, with where it lives and its reader-pool key."""

    repo: Repo
    path: Path

    @property
    def key(self) -> tuple[int, str]:
        return (self.repo.id, str(self.path))


def readers(ctx: AppContext) -> ReaderPool:
    pool = getattr(ctx, "readers", None)
    if pool is None:
        raise RuntimeError("the reader pool is not running (app cleanup_ctx)")
    return pool  # type: ignore[no-any-return]


_PATHS: dict[tuple[str, str], Path] = {}


def repo_path(ctx: AppContext, repo: Repo) -> Path:
    """Where a stored repository lives (memoized: safe_join resolves symlinks on disk)."""
    key = (repo.owner, repo.name)
    path = _PATHS.get(key)
    if path is None or path.parent.parent != ctx.storage.root:
        if len(_PATHS) > 10_000:
            _PATHS.clear()
        path = _PATHS[key] = ctx.storage.path(repo.owner, repo.name)
    return path


async def open_repo(ctx: AppContext, principal: Principal, owner: str, name: str) -> RepoHandle:
    repo, _ = await find_repo(ctx, principal, owner, name)
    return RepoHandle(repo, repo_path(ctx, repo))


@contextlib.asynccontextmanager
async def reader(ctx: AppContext, handle: RepoHandle) -> AsyncIterator[CatFile]:
    try:
        async with readers(ctx).reader(handle.key, handle.path) as cat:
            yield cat
    except ObjectTooLarge as exc:  # a pathological pushed object: refused, never a 500
        raise Forbidden(
            "The requested object is too large to read through the API.",
            errors=[{"resource": "Blob", "field": "data", "code": "too_large"}],
        ) from exc


# -- validation of what the client sent --


def check_ref(value: str, field: str = "ref", resource: str = "Commit") -> str:
    if not is_valid_ref(value) or len(value) > 255:
        raise Invalid.field(resource, field, message="not a valid ref, branch, tag or SHA")
    return value


def check_path(value: str, field: str = "path") -> str:
    """A repository path: relative, no `.`/`..` parts, no control characters."""
    path = value.strip("/")
    if not is_valid_tree_path(path) or any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise Invalid.field("Content", field, message="not a valid path in the repository")
    return path


# -- refs --


async def resolve_commit(cat: CatFile, ref: str) -> str | None:
    """Branch, then tag, then (abbreviated) SHA, then a full ref name -> a commit id."""
    check_ref(ref)
    candidates = [f"refs/heads/{ref}^{{commit}}", f"refs/tags/{ref}^{{commit}}"]
    if HEX_RE.match(ref) or ref == "HEAD" or ref.startswith("refs/"):
        candidates.append(f"{ref}^{{commit}}")
    for info in await cat.info_many(candidates):
        if info is not None:
            return info.sha
    return None


async def commit_or_default(cat: CatFile, handle: RepoHandle, ref: str | None) -> str:
    """The commit a `?ref=`/`?sha=` names, the default branch when absent; 404 if none."""
    name = ref or handle.repo.default_branch
    sha = await resolve_commit(cat, name)
    if sha is None:
        raise NotFound(f"No commit found for the ref {name}")
    return sha


async def tree_of(cat: CatFile, commit: str) -> str:
    """The root tree of a commit (read from the commit object: cached by its id)."""
    got = await cat.read(commit, 16 * 1024 * 1024)
    if got is None or got[0].type != "commit" or not got[1].startswith(b"tree "):
        raise NotFound("Not Found")
    return got[1][5:45].decode("ascii")


@dataclass(frozen=True)
class RefHead:
    name: str
    sha: str


async def list_refs(ctx: AppContext, handle: RepoHandle, kind: str) -> list[RefHead]:
    """Branches (sorted by name) or tags (newest version first), each with its commit."""
    prefix = "refs/heads/" if kind == "branches" else "refs/tags/"
    args = ["for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)"]
    if kind == "tags":
        args.append("--sort=-v:refname")
    _, out, _ = await run_git(ctx.git, [*args, prefix], git_dir=handle.path)
    heads = []
    for line in out.decode("utf-8", "replace").splitlines():
        refname, sha, peeled = [*line.split("\x00"), "", ""][:3]
        if refname.startswith(prefix):
            heads.append(RefHead(refname[len(prefix) :], peeled or sha))
    return heads


async def branch_head(cat: CatFile, name: str) -> str | None:
    check_ref(name, "branch", "Branch")
    info = await cat.info(f"refs/heads/{name}^{{commit}}")
    return info.sha if info else None


# -- contents --


@dataclass
class FileContent:
    entry: TreeEntry
    size: int
    data: bytes | None  # None when too large for JSON (raw only)


@dataclass
class DirContent:
    entries: list[TreeEntry]


@dataclass
class OtherContent:
    """A symlink (data is its target) or a submodule (data is None)."""

    entry: TreeEntry
    data: bytes | None


Content = FileContent | DirContent | OtherContent


async def contents(cat: CatFile, commit: str, path: str) -> Content:
    """What `path` is at `commit`: a file (bytes up to JSON_CONTENT_MAX), a directory (its
    first DIR_MAX_ENTRIES entries, as GitHub), a symlink or a submodule."""
    root = await tree_of(cat, commit)
    entry = await lookup(cat, root, path)
    if entry is None:
        raise NotFound("Not Found")
    if entry.type == "tree":
        listed = await read_tree(cat, entry.sha, f"{entry.path}/" if entry.path else "")
        return DirContent(await with_sizes(cat, (listed or [])[:DIR_MAX_ENTRIES]))
    if entry.type == "commit":
        return OtherContent(entry, None)
    info = await cat.info(entry.sha)
    if info is None:
        raise NotFound("Not Found")
    if entry.mode == "120000":
        got = await cat.read(entry.sha, 64 * 1024) if info.size <= 64 * 1024 else None
        return OtherContent(entry, got[1] if got else b"")
    if info.size > RAW_MAX:
        raise Forbidden(
            "This API returns blobs up to 100 MB in size. The requested blob is too large "
            "to fetch via the API, but you can clone the repository instead.",
            errors=[{"resource": "Blob", "field": "data", "code": "too_large"}],
        )
    if info.size > JSON_CONTENT_MAX:
        return FileContent(entry, info.size, None)
    got = await cat.read(entry.sha, JSON_CONTENT_MAX)
    return FileContent(entry, info.size, got[1] if got else b"")


# -- trees --


@dataclass
class Tree:
    sha: str
    entries: list[TreeEntry]
    truncated: bool


async def tree_target(cat: CatFile, sha_or_ref: str) -> str:
    """A tree id from a tree, commit or tag id, or from a branch or tag name."""
    check_ref(sha_or_ref, "tree_sha", "Tree")
    if HEX_RE.match(sha_or_ref):
        info = await cat.info(f"{sha_or_ref}^{{tree}}")
        if info is not None:
            return info.sha
    commit = await resolve_commit(cat, sha_or_ref)
    if commit is None:
        raise NotFound("Not Found")
    return await tree_of(cat, commit)


async def tree(
    ctx: AppContext,
    handle: RepoHandle,
    sha_or_ref: str,
    *,
    recursive: bool,
    max_entries: int = TREE_MAX_ENTRIES,
    max_bytes: int = TREE_MAX_BYTES,
) -> Tree:
    async with reader(ctx, handle) as cat:
        tree_sha = await tree_target(cat, sha_or_ref)
        if not recursive:
            entries = await read_tree(cat, tree_sha) or []
            truncated = len(entries) > max_entries
            return Tree(tree_sha, await with_sizes(cat, entries[:max_entries]), truncated)
    listing = await list_recursive(
        ctx.git, handle.path, tree_sha, max_entries=max_entries, max_bytes=max_bytes
    )
    return Tree(tree_sha, listing.entries, listing.truncated)
