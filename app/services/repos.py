"""Repositories: create, find with access, update, delete, collaborators."""

from __future__ import annotations

import logging

from app.auth.access import Access, Principal, effective_access
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from app.git.names import check_repo, is_valid_ref, route_names
from app.services.context import AppContext
from app.services.events import access_changed as events_access_changed
from app.services.events import emit, repository_payload
from app.store.records import Duplicate, Repo, User

log = logging.getLogger(__name__)


async def access_to(ctx: AppContext, principal: Principal, repo: Repo) -> Access:
    permission = None
    if principal.user is not None and principal.user.id != repo.owner_id:
        permission = await ctx.store.permission_of(repo.id, principal.user.id)
    return effective_access(principal, repo, permission)


async def resolve(
    ctx: AppContext, principal: Principal, owner: str, name: str, need: Access = Access.READ
) -> tuple[Repo, Access]:
    """The repository a git request names, if the caller may `need` it.

    Missing and unreadable look the same: 401 for anonymous callers (so git asks for
    credentials), 404 otherwise. Readable without the needed right: 403.
    """
    return await _lookup(ctx, principal, owner, name, need, hidden_anonymous=Unauthorized)


async def find_repo(
    ctx: AppContext, principal: Principal, owner: str, name: str, need: Access = Access.READ
) -> tuple[Repo, Access]:
    """`resolve` for the REST API: missing or invisible is 404 for everyone (GitHub's answer,
    anonymous callers included); visible without the needed right is 401 (anonymous) or 403.
    """
    return await _lookup(ctx, principal, owner, name, need, hidden_anonymous=NotFound)


async def _lookup(
    ctx: AppContext,
    principal: Principal,
    owner: str,
    name: str,
    need: Access,
    *,
    hidden_anonymous: type[Unauthorized] | type[NotFound],
) -> tuple[Repo, Access]:
    try:
        owner, name = route_names(owner, name)
    except NotFound:
        raise NotFound("Not Found") from None  # an impossible name: nothing to hide
    repo = await ctx.store.repo_by_name(owner, name)
    granted = await access_to(ctx, principal, repo) if repo else Access.NONE
    if repo is None or Access.READ not in granted:
        if principal.user is None and hidden_anonymous is Unauthorized:
            raise Unauthorized("Requires authentication")
        raise NotFound("Not Found")
    if need not in granted:
        if principal.user is None:
            raise Unauthorized("Requires authentication")
        raise Forbidden(
            "Must have admin rights to Repository."
            if Access.ADMIN in need
            else "Permission to repository denied"
        )
    return repo, granted


async def access_changed(ctx: AppContext, repo: Repo) -> None:
    """Called after who may read `repo` changed: it turned private or public, a collaborator
    was added, changed or removed. The events service re-checks its subscribers here (the
    hook publishes nothing by itself); `repo` is the row as it is now."""
    log.debug("access to %s changed", repo.full_name)
    await events_access_changed(ctx, repo.id)


async def create_repo(
    ctx: AppContext,
    owner: User,
    name: str,
    *,
    description: str = "",
    private: bool = False,
    default_branch: str = "main",
    actor: str | None = None,
) -> Repo:
    check_repo(name)
    if not is_valid_ref(f"refs/heads/{default_branch}") or len(default_branch) > 255:
        raise Invalid.field("Repository", "default_branch", message="not a valid branch name")
    if len(description) > 2000:
        raise Invalid.field("Repository", "description", message="at most 2000 characters")
    try:
        repo = await ctx.store.create_repo(
            owner, name, description=description, private=private, default_branch=default_branch
        )
    except Duplicate as exc:
        raise Conflict("Repository", "name", "name already exists on this account") from exc
    try:
        await ctx.storage.create(repo.owner, repo.name, default_branch)
    except Exception:
        await ctx.store.delete_repo(repo.id)
        raise
    await emit(ctx, repo, [("repository.created", repository_payload(repo))], actor or owner.login)
    return repo


async def delete_repo(ctx: AppContext, repo: Repo, *, actor: str | None) -> None:
    """Row first (no new git work can find it), then the directory via trash, then the event."""
    if not await ctx.store.delete_repo(repo.id):
        raise NotFound("Not Found")
    await ctx.storage.delete(repo.owner, repo.name)
    await emit(ctx, repo, [("repository.deleted", repository_payload(repo))], actor)
    await access_changed(ctx, repo)  # other instances forget the row they may have cached


async def rename_repo(ctx: AppContext, repo: Repo, new_name: str) -> Repo:
    check_repo(new_name)
    if new_name == repo.name:
        return repo
    try:
        await ctx.store.update_repo(repo.id, name=new_name)
    except Duplicate as exc:
        raise Conflict("Repository", "name", "name already exists on this account") from exc
    try:
        await ctx.storage.rename(repo.owner, repo.name, repo.owner, new_name)
    except OSError:
        await ctx.store.update_repo(repo.id, name=repo.name)
        raise
    renamed = await ctx.store.repo_by_id(repo.id)
    assert renamed is not None
    await access_changed(ctx, renamed)  # other instances forget the old name's row
    return renamed
