"""Who may do what to a repository: a flag enum and one pure function."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.store.records import Repo, User


class Access(enum.Flag):
    NONE = 0
    READ = enum.auto()
    WRITE = enum.auto()
    ADMIN = enum.auto()


ROLE_ACCESS = {
    "read": Access.READ,
    "write": Access.READ | Access.WRITE,
    "admin": Access.READ | Access.WRITE | Access.ADMIN,
}
ALL = ROLE_ACCESS["admin"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a user (or nobody) and the scopes of the credential used.

    Passwords and JWTs carry every scope; a token carries the scopes it was made with.
    """

    user: User | None
    scopes: frozenset[str] = frozenset(ROLE_ACCESS)
    token_id: int | None = None
    method: str = "anonymous"

    @property
    def scope_mask(self) -> Access:
        mask = Access.NONE
        for scope in self.scopes:
            mask |= ROLE_ACCESS.get(scope, Access.NONE)
        return mask


ANONYMOUS = Principal(None)


def access_for(user: User | None, repo: Repo, collaborator_permission: str | None) -> Access:
    """What a user may do with a repository, before credential scopes are applied."""
    if user is not None and (user.is_admin or user.id == repo.owner_id):
        return ALL
    granted = Access.NONE if repo.private else Access.READ
    if user is not None and collaborator_permission in ROLE_ACCESS:
        granted |= ROLE_ACCESS[collaborator_permission]
    return granted


def effective_access(
    principal: Principal, repo: Repo, collaborator_permission: str | None
) -> Access:
    """access_for, narrowed by the scopes of the credential (public read is never taken away)."""
    granted = access_for(principal.user, repo, collaborator_permission) & principal.scope_mask
    if not repo.private:
        granted |= Access.READ
    return granted
