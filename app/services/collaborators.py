"""Collaborators of a repository: GitHub's role names on our read / write / admin."""

from __future__ import annotations

from app.auth.access import Access, access_for
from app.errors import Invalid
from app.services.context import AppContext
from app.services.repos import access_changed
from app.services.users import get_user
from app.store.records import Collaborator, Repo, User

# GitHub's names (PyGithub sends pull / push / admin, also triage and maintain) -> ours.
ROLES = {
    "read": "read",
    "pull": "read",
    "triage": "read",
    "write": "write",
    "push": "write",
    "maintain": "write",
    "admin": "admin",
}


async def add_collaborator(
    ctx: AppContext, repo: Repo, login: str, permission: str
) -> tuple[User, bool]:
    """Add or change; returns the user and whether they were not a collaborator before."""
    role = ROLES.get(permission)
    if role is None:
        raise Invalid.field("Collaborator", "permission", message=f"one of {', '.join(ROLES)}")
    user = await get_user(ctx, login)
    if user.id == repo.owner_id:
        raise Invalid.field(
            "Collaborator", "username", message="Repository owner cannot be a collaborator"
        )
    before = await ctx.store.permission_of(repo.id, user.id)
    created = await ctx.store.set_collaborator(repo.id, user.id, role)
    if before != role:
        await access_changed(ctx, repo)
    return user, created


async def remove_collaborator(ctx: AppContext, repo: Repo, login: str) -> None:
    """Removing someone who is not a collaborator is not an error (GitHub answers 204 too)."""
    user = await get_user(ctx, login)
    if await ctx.store.remove_collaborator(repo.id, user.id):
        await access_changed(ctx, repo)


async def is_collaborator(ctx: AppContext, repo: Repo, login: str) -> bool:
    user = await ctx.store.user_by_login(login) if len(login) <= 39 else None
    if user is None:
        return False
    return await ctx.store.permission_of(repo.id, user.id) is not None


async def list_collaborators(
    ctx: AppContext, repo: Repo, *, offset: int, limit: int
) -> tuple[list[Collaborator], int]:
    return await ctx.store.list_collaborators(repo.id, offset=offset, limit=limit)


async def permission_of(ctx: AppContext, repo: Repo, login: str) -> tuple[User, str]:
    """GitHub's answer for one user: admin, write, read or none (404 if no such user)."""
    user = await get_user(ctx, login)
    stored = await ctx.store.permission_of(repo.id, user.id)
    granted = access_for(user, repo, stored)
    if Access.ADMIN in granted:
        return user, "admin"
    if Access.WRITE in granted:
        return user, "write"
    if Access.READ in granted:
        return user, "read"
    return user, "none"
