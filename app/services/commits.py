"""History: commit lists with filters, one commit with its diff, comparisons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.errors import AppError, Invalid, NotFound
from app.git.history import (
    Commit,
    Diff,
    RevFilter,
    ahead_behind,
    diff,
    merge_base,
    parse_commit,
    rev_list,
)
from app.git.names import SHA_RE
from app.git.reader import CatFile
from app.services.browse import (
    RepoHandle,
    check_path,
    check_ref,
    commit_or_default,
    reader,
    readers,
)
from app.services.browse import resolve_commit as resolve_ref
from app.services.context import AppContext

MAX_COMMIT_OBJECT = 16 * 1024 * 1024
HISTORY_CACHE_MAX = 500_000
COMPARE_MAX_COMMITS = 10_000


class EmptyRepository(AppError):
    status = 409
    default_message = "Git Repository is empty."


async def read_commits(cat: CatFile, shas: Sequence[str]) -> list[Commit]:
    """Commits by full id; parsed commits are kept in the reader cache (they never change)."""
    cache = cat.cache
    parsed: dict[str, Commit] = {}
    if cache is not None:
        for sha in shas:
            hit = cache.get((cat.cache_key, "commit", sha))
            if isinstance(hit, Commit):
                parsed[sha] = hit
    missing = [sha for sha in shas if sha not in parsed]
    found = await cat.read_many(missing, MAX_COMMIT_OBJECT)
    for sha, got in zip(missing, found, strict=True):
        if got is None or got[0].type != "commit":
            raise NotFound(f"No commit found for SHA: {sha}")
        parsed[sha] = commit = parse_commit(sha, got[1])
        if cache is not None and SHA_RE.match(sha):
            cache.put((cat.cache_key, "commit", sha), commit, 2 * len(got[1]) + 600)
    return [parsed[sha] for sha in shas]


@dataclass(frozen=True)
class CommitQuery:
    sha: str | None = None
    path: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    author: str | None = None


async def _author_filter(ctx: AppContext, author: str | None) -> str | None:
    """GitHub takes a login or an email: a known login becomes that user's email."""
    if not author or "@" in author:
        return author
    user = await ctx.store.user_by_login(author) if len(author) <= 39 else None
    return user.email if user is not None and user.email else author


async def list_commits(
    ctx: AppContext, handle: RepoHandle, query: CommitQuery, *, skip: int, limit: int
) -> tuple[list[Commit], int]:
    """A page of history, newest first, and how many commits match in all."""
    if query.sha is not None:
        check_ref(query.sha, "sha")
    path = check_path(query.path) if query.path else None
    async with reader(ctx, handle) as cat:
        head = await resolve_ref(cat, query.sha or handle.repo.default_branch)
    if head is None:
        if query.sha is None:
            raise EmptyRepository()
        raise NotFound(f"No commit found for SHA: {query.sha}")
    filters = RevFilter(path, query.since, query.until, await _author_filter(ctx, query.author))
    shas, total = await _history(ctx, handle, head, filters, skip, limit)
    async with reader(ctx, handle) as cat:
        return await read_commits(cat, shas), total


async def _history(
    ctx: AppContext, handle: RepoHandle, head: str, filters: RevFilter, skip: int, limit: int
) -> tuple[list[str], int]:
    """A page of the walk from head and its length. The walk from a commit id never changes,
    so the whole list (packed, up to HISTORY_CACHE_MAX ids) is kept in the reader cache."""
    cache = readers(ctx).cache
    key = ("revs", handle.key, head, filters)
    packed = cache.get(key) if cache.max_bytes else None
    if isinstance(packed, bytes):
        width = len(head) // 2
        total = len(packed) // width
        chunk = packed[skip * width : (skip + limit) * width]
        return [chunk[i : i + width].hex() for i in range(0, len(chunk), width)], total
    page = await rev_list(
        ctx.git,
        handle.path,
        [head],
        filters=filters,
        skip=skip,
        limit=limit,
        keep_all=HISTORY_CACHE_MAX if cache.max_bytes else 0,
    )
    if page.every is not None:
        data = b"".join(bytes.fromhex(sha) for sha in page.every)
        cache.put(key, data, len(data))
    return page.shas, page.total


async def get_commit(ctx: AppContext, handle: RepoHandle, ref: str) -> tuple[Commit, Diff]:
    check_ref(ref)
    async with reader(ctx, handle) as cat:
        sha = await resolve_ref(cat, ref)
        if sha is None:
            raise Invalid(
                f"No commit found for SHA: {ref}",
                errors=[{"resource": "Commit", "field": "sha", "code": "invalid"}],
            )
        (commit,) = await read_commits(cat, [sha])
    parent = commit.parents[0] if commit.parents else None
    return commit, await diff(ctx.git, handle.path, parent, sha)


@dataclass
class Comparison:
    base: Commit
    head: Commit
    merge_base: Commit
    status: str
    ahead_by: int
    behind_by: int
    commits: list[Commit]
    files: Diff


def split_basehead(basehead: str) -> tuple[str, str]:
    base, sep, head = basehead.partition("...")
    if not sep or not base or not head:
        raise Invalid.field("Comparison", "basehead", message="expected BASE...HEAD")
    return check_ref(base, "base"), check_ref(head, "head")


async def compare(
    ctx: AppContext, handle: RepoHandle, basehead: str, *, skip: int, limit: int
) -> Comparison:
    base_ref, head_ref = split_basehead(basehead)
    async with reader(ctx, handle) as cat:
        base = await commit_or_default(cat, handle, base_ref)
        head = await commit_or_default(cat, handle, head_ref)
    common = await merge_base(ctx.git, handle.path, base, head)
    if common is None:
        raise NotFound(f"No common ancestor between {base_ref} and {head_ref}.")
    ahead, behind = await ahead_behind(ctx.git, handle.path, base, head)
    limit = max(0, min(limit, COMPARE_MAX_COMMITS - skip))
    page = await rev_list(
        ctx.git, handle.path, [head], exclude=[base], skip=skip, limit=limit, reverse=True
    )
    files = await diff(ctx.git, handle.path, common, head)
    async with reader(ctx, handle) as cat:
        base_c, head_c, common_c = await read_commits(cat, [base, head, common])
        listed = await read_commits(cat, page.shas)
    if ahead == 0 and behind == 0:
        status = "identical"
    elif behind == 0:
        status = "ahead"
    elif ahead == 0:
        status = "behind"
    else:
        status = "diverged"
    return Comparison(base_c, head_c, common_c, status, ahead, behind, listed, files)
