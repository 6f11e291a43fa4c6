"""Plain records the store hands out: no database types leak past the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class Duplicate(Exception):
    """A unique constraint refused the write (a name is taken)."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    email: str | None
    is_admin: bool
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    user_id: int
    name: str
    scopes: frozenset[str]
    token_last_eight: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Repo:
    id: int
    owner_id: int
    owner: str
    name: str
    description: str
    private: bool
    default_branch: str
    created_at: datetime
    updated_at: datetime
    pushed_at: datetime | None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class Collaborator:
    user: User
    permission: str


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    repo_id: int
    repo_name: str
    type: str
    actor: str | None
    payload: str  # JSON text, as stored
    created_at: datetime
