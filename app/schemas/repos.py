"""Repositories and collaborators: request and response bodies, list queries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictStr

from app.schemas.base import BodyModel, OutModel
from app.schemas.common import PageQuery, Timestamp
from app.schemas.users import SimpleUserOut

# CONTRACT §2 without the parts a portable regex cannot say (`.git` suffix: checked later).
REPO_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$"
BRANCH_MAX = 255


class RepoPermissions(OutModel):
    """What the caller may do, in GitHub's five roles."""

    admin: bool
    maintain: bool
    push: bool
    triage: bool
    pull: bool


class RepoOut(OutModel):
    """A repository in GitHub's shape (the fields PyGithub and `gh` read)."""

    id: int
    node_id: str
    name: str
    full_name: str
    private: bool
    visibility: Literal["public", "private"]
    owner: SimpleUserOut
    html_url: str
    description: str | None
    fork: bool
    url: str
    clone_url: str
    git_url: str | None
    ssh_url: str | None
    svn_url: str | None
    mirror_url: str | None
    homepage: str | None
    default_branch: str
    size: int = Field(description="Disk usage in KB")
    created_at: Timestamp
    updated_at: Timestamp
    pushed_at: Timestamp | None
    permissions: RepoPermissions
    archived: bool
    disabled: bool
    is_template: bool
    has_issues: bool
    has_projects: bool
    has_wiki: bool
    has_pages: bool
    has_downloads: bool
    allow_forking: bool
    forks_count: int
    stargazers_count: int
    watchers_count: int
    open_issues_count: int
    forks: int
    open_issues: int
    watchers: int
    language: str | None
    license: None
    topics: list[str]
    archive_url: str
    branches_url: str
    collaborators_url: str
    commits_url: str
    compare_url: str
    contents_url: str
    events_url: str
    tags_url: str
    trees_url: str
    owner_url: str | None = None


class RepoCreate(BodyModel):
    """POST /user/repos. `private` wins over `visibility` when both are given."""

    name: StrictStr = Field(pattern=REPO_NAME_PATTERN, max_length=100)
    description: StrictStr | None = Field(None, max_length=2000)
    private: StrictBool | None = None
    visibility: Literal["public", "private"] | None = None
    auto_init: StrictBool = False
    default_branch: StrictStr | None = Field(None, min_length=1, max_length=BRANCH_MAX)


class RepoUpdate(BodyModel):
    """PATCH /repos/{owner}/{repo}: every field optional; a new `name` renames."""

    name: StrictStr | None = Field(None, pattern=REPO_NAME_PATTERN, max_length=100)
    description: StrictStr | None = Field(None, max_length=2000)
    private: StrictBool | None = None
    visibility: Literal["public", "private"] | None = None
    default_branch: StrictStr | None = Field(None, min_length=1, max_length=BRANCH_MAX)


class UserReposQuery(PageQuery):
    """GET /user/repos."""

    type: Literal["all", "owner", "public", "private", "member"] = "all"
    visibility: Literal["all", "public", "private"] = "all"
    affiliation: StrictStr | None = Field(
        None, max_length=100, description="owner,collaborator (organization_member is ignored)"
    )
    sort: Literal["created", "updated", "pushed", "full_name"] = "full_name"
    direction: Literal["asc", "desc"] | None = None


class OwnerReposQuery(PageQuery):
    """GET /users/{username}/repos: the repositories that user owns, as the caller sees them."""

    type: Literal["all", "owner", "member"] = "owner"
    sort: Literal["created", "updated", "pushed", "full_name"] = "full_name"
    direction: Literal["asc", "desc"] | None = None


Permission = Literal["read", "write", "admin", "pull", "triage", "push", "maintain"]


class CollaboratorPut(BodyModel):
    """PUT .../collaborators/{username}: GitHub's role names map onto read, write, admin."""

    permission: Permission = "push"


class InvitationOut(OutModel):
    """The answer to adding a new collaborator (GitHub's invitation, accepted at once)."""

    id: int
    node_id: str
    repository: RepoOut
    invitee: SimpleUserOut
    inviter: SimpleUserOut | None
    permissions: Literal["read", "write", "admin"]
    created_at: Timestamp
    expired: bool
    url: str
    html_url: str


class PermissionOut(OutModel):
    """GET .../collaborators/{username}/permission."""

    permission: Literal["admin", "write", "read", "none"]
    role_name: str
    user: SimpleUserOut
