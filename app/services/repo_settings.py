"""Repository use cases of the REST API: create (with auto_init), update, the caller's roles."""

from __future__ import annotations

import logging

from app.auth.access import Access
from app.errors import Conflict, Invalid, NotFound
from app.git.head import has_any_branch, has_branch, set_head
from app.git.init_commit import ZERO_SHA, initial_commit
from app.git.names import check_repo, is_valid_ref
from app.services.context import AppContext
from app.services.pushes import record_push
from app.services.repos import access_changed, create_repo, delete_repo, rename_repo
from app.store.records import Repo, User

log = logging.getLogger(__name__)


def roles(granted: Access) -> dict[str, bool]:
    """Access flags -> GitHub's `permissions` object."""
    return {
        "admin": Access.ADMIN in granted,
        "maintain": Access.ADMIN in granted,
        "push": Access.WRITE in granted,
        "triage": Access.WRITE in granted,
        "pull": Access.READ in granted,
    }


async def create_repository(
    ctx: AppContext,
    owner: User,
    name: str,
    *,
    description: str = "",
    private: bool = False,
    default_branch: str = "main",
    auto_init: bool = False,
) -> Repo:
    repo = await create_repo(
        ctx,
        owner,
        name,
        description=description,
        private=private,
        default_branch=default_branch,
        actor=owner.login,
    )
    if not auto_init:
        return repo
    try:
        await _auto_init(ctx, repo, owner)
    except Exception:
        log.exception("auto_init of %s failed: removing the repository", repo.full_name)
        await delete_repo(ctx, repo, actor=owner.login)
        raise
    return await ctx.store.repo_by_id(repo.id) or repo


async def _auto_init(ctx: AppContext, repo: Repo, owner: User) -> None:
    """A README on the default branch, committed with plumbing, announced like a push."""
    readme = f"# {repo.name}\n"
    if repo.description:
        readme += f"\n{repo.description}\n"
    path = ctx.storage.path(repo.owner, repo.name)
    sha = await initial_commit(
        ctx.git,
        path,
        repo.default_branch,
        {"README.md": readme.encode()},
        message="Initial commit\n",
        author=owner.login,
        email=owner.email,
    )
    await record_push(
        ctx, repo, owner.login, [(ZERO_SHA, sha, f"refs/heads/{repo.default_branch}")]
    )


async def update_repository(
    ctx: AppContext,
    repo: Repo,
    *,
    name: str | None = None,
    description: str | None = None,
    private: bool | None = None,
    default_branch: str | None = None,
) -> Repo:
    """Validate every change first, then apply: settings, HEAD, and the rename last."""
    changes: dict[str, object] = {}
    if name is not None and name != repo.name:
        check_repo(name)
        other = await ctx.store.repo_by_name(repo.owner, name)
        if other is not None and other.id != repo.id:
            raise Conflict("Repository", "name", "name already exists on this account")
    if description is not None and description != repo.description:
        if len(description) > 2000:
            raise Invalid.field("Repository", "description", message="at most 2000 characters")
        changes["description"] = description
    if private is not None and private != repo.private:
        changes["private"] = private
    if default_branch is not None and default_branch != repo.default_branch:
        await _check_default_branch(ctx, repo, default_branch)
        changes["default_branch"] = default_branch
    if "default_branch" in changes:
        await set_head(ctx.git, ctx.storage.path(repo.owner, repo.name), str(default_branch))
    if changes:
        await ctx.store.update_repo(repo.id, **changes)
    if name is not None and name != repo.name:
        current = await ctx.store.repo_by_id(repo.id) or repo
        await rename_repo(ctx, current, name)
    updated = await ctx.store.repo_by_id(repo.id)
    if updated is None:
        raise NotFound("Not Found")
    if "private" in changes:
        await access_changed(ctx, updated)
    return updated


async def _check_default_branch(ctx: AppContext, repo: Repo, branch: str) -> None:
    """A valid name that exists, unless the repository has no branch at all yet."""
    if not is_valid_ref(f"refs/heads/{branch}") or len(branch) > 255:
        raise Invalid.field("Repository", "default_branch", message="not a valid branch name")
    path = ctx.storage.path(repo.owner, repo.name)
    if await has_any_branch(ctx.git, path) and not await has_branch(ctx.git, path, branch):
        raise Invalid.field("Repository", "default_branch", message="no such branch")


async def repo_size_kb(ctx: AppContext, repo: Repo) -> int:
    try:
        return await ctx.storage.disk_usage_kb(repo.owner, repo.name)
    except (OSError, ValueError):
        return 0
