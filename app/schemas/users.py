"""Users, personal access tokens, JWTs: request and response bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictStr, field_validator

from app.schemas.base import BodyModel, OutModel, QueryModel
from app.schemas.common import MAX_ID, Timestamp

LOGIN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$"
Scope = Literal["read", "write", "admin"]


class SimpleUserOut(OutModel):
    """A user as GitHub shows one inside other objects (owners, collaborators, lists)."""

    login: str
    id: int
    node_id: str
    avatar_url: str
    gravatar_id: str
    url: str
    html_url: str
    followers_url: str
    following_url: str
    gists_url: str
    starred_url: str
    subscriptions_url: str
    organizations_url: str
    repos_url: str
    events_url: str
    received_events_url: str
    type: Literal["User"]
    site_admin: bool


class UserOut(SimpleUserOut):
    """GET /user and GET /users/{username}. `email` only for the user themself and admins."""

    name: str | None
    company: str | None
    blog: str
    location: str | None
    email: str | None
    hireable: bool | None
    bio: str | None
    public_repos: int
    public_gists: int
    followers: int
    following: int
    created_at: Timestamp
    updated_at: Timestamp


class CollaboratorPermissions(OutModel):
    admin: bool
    maintain: bool
    push: bool
    triage: bool
    pull: bool


class CollaboratorOut(SimpleUserOut):
    permissions: CollaboratorPermissions
    role_name: Literal["read", "write", "admin"]


class UsersQuery(QueryModel):
    """GET /users: GitHub's `since` paging (users with an id greater than since)."""

    since: int = Field(0, ge=0, le=MAX_ID, description="Only users with an id above this")
    per_page: int = Field(30, ge=1, description="At most 100 (larger is clamped)")


class TokenRequest(BodyModel):
    """POST /auth/token: a password login that returns a JWT."""

    username: StrictStr = Field(min_length=1, max_length=39)
    password: StrictStr = Field(min_length=1, max_length=1024)


class JwtOut(OutModel):
    token: str
    token_type: Literal["bearer"]
    expires_at: Timestamp


def _read_only() -> list[Scope]:
    return ["read"]


class TokenCreate(BodyModel):
    """POST /user/tokens. `note` is accepted as GitHub's old name for `name`."""

    name: StrictStr | None = Field(None, min_length=1, max_length=100)
    note: StrictStr | None = Field(None, min_length=1, max_length=100)
    scopes: list[Scope] = Field(
        default_factory=_read_only,
        max_length=10,
        description="Scopes: read, write, admin (a comma-separated string is accepted too)",
    )
    expires_at: AwareDatetime | None = Field(None, description="Optional expiry, in the future")

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class TokenOut(OutModel):
    id: int
    name: str
    note: str
    scopes: list[str]
    token_last_eight: str
    url: str
    created_at: Timestamp
    last_used_at: Timestamp | None
    expires_at: Timestamp | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret: shown in this answer only, never again")


class AdminUserCreate(BodyModel):
    """POST /admin/users (site admins only)."""

    login: StrictStr = Field(pattern=LOGIN_PATTERN)
    email: StrictStr | None = Field(None, max_length=320)
    password: StrictStr | None = Field(None, min_length=8, max_length=1024)
    admin: StrictBool = False
