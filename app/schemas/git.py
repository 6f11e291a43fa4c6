"""Reading repositories: branches, tags, commits, comparisons, contents, trees (GitHub shapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, RootModel, field_validator

from app.schemas.base import OutModel, QueryModel
from app.schemas.common import Timestamp

# Query text that may reach git inside one argument: no control characters (NUL, newline).
SafeStr = Annotated[str, Field(max_length=1000, pattern=r"^[^\x00-\x1f\x7f]*$")]


# -- queries --


class RefQuery(QueryModel):
    ref: SafeStr | None = Field(None, description="Branch, tag or commit SHA (default branch)")


class CommitsQuery(QueryModel):
    sha: SafeStr | None = Field(None, description="Branch, tag or SHA to start from")
    path: SafeStr | None = Field(None, description="Only commits touching this path")
    author: SafeStr | None = Field(None, description="Login or email of the author")
    since: datetime | None = Field(None, description="ISO 8601: commits after this time")
    until: datetime | None = Field(None, description="ISO 8601: commits before this time")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class TreeQuery(QueryModel):
    recursive: SafeStr | None = Field(
        None, max_length=10, description="Any value lists the whole tree (as GitHub)"
    )


class CompareQuery(QueryModel):
    per_page: int = Field(250, ge=1, description="Commits per page (at most 1000, clamped)")
    page: int = Field(1, ge=1, le=100_000)


class ArchiveQuery(QueryModel):
    """The signed part of an archive link (made by the tarball/zipball redirect)."""

    expires: int | None = Field(None, ge=0, le=10**11, description="Expiry, epoch seconds")
    signature: str | None = Field(None, pattern=r"^[0-9a-f]{1,128}$")


# -- responses --


class ShaUrl(OutModel):
    sha: str
    url: str


class ParentOut(OutModel):
    sha: str
    url: str
    html_url: str


class GitActorOut(OutModel):
    name: str
    email: str
    date: Timestamp


class VerificationOut(OutModel):
    verified: bool = False
    reason: str = "unsigned"
    signature: str | None = None
    payload: str | None = None


class GitCommitOut(OutModel):
    url: str
    author: GitActorOut
    committer: GitActorOut
    message: str
    tree: ShaUrl
    comment_count: int = 0
    verification: VerificationOut = Field(default_factory=VerificationOut)


class CommitOut(OutModel):
    """A commit as in GitHub's list: author/committer (GitHub users) are null here."""

    sha: str
    node_id: str
    commit: GitCommitOut
    url: str
    html_url: str
    comments_url: str
    author: dict[str, Any] | None = None
    committer: dict[str, Any] | None = None
    parents: list[ParentOut]


class CommitStatsOut(OutModel):
    additions: int
    deletions: int
    total: int


class CommitFileOut(OutModel):
    sha: str | None
    filename: str
    status: Literal["added", "removed", "modified", "renamed", "copied", "changed", "unchanged"]
    additions: int
    deletions: int
    changes: int
    blob_url: str
    raw_url: str
    contents_url: str
    patch: str | None = None
    previous_filename: str | None = None


class CommitDetailOut(CommitOut):
    stats: CommitStatsOut
    files: list[CommitFileOut]


class BranchShortOut(OutModel):
    name: str
    commit: ShaUrl
    protected: bool = False


class BranchLinksOut(OutModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    html: str
    self_: str = Field(alias="self")


class BranchOut(OutModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str
    commit: CommitOut
    links: BranchLinksOut = Field(alias="_links")
    protected: bool = False
    protection: dict[str, Any] = Field(default_factory=lambda: {"enabled": False})
    protection_url: str


class TagOut(OutModel):
    name: str
    commit: ShaUrl
    zipball_url: str
    tarball_url: str
    node_id: str


class CompareOut(OutModel):
    url: str
    html_url: str
    permalink_url: str
    diff_url: str
    patch_url: str
    base_commit: CommitOut
    merge_base_commit: CommitOut
    status: Literal["identical", "ahead", "behind", "diverged"]
    ahead_by: int
    behind_by: int
    total_commits: int
    commits: list[CommitOut]
    files: list[CommitFileOut]


class ContentLinksOut(OutModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    git: str | None
    html: str | None
    self_: str = Field(alias="self")


class ContentOut(OutModel):
    """A file (`content` base64 when at most 1 MB, else `encoding: none`), a directory
    entry, a symlink (`target`) or a submodule (`submodule_git_url`)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: Literal["file", "dir", "symlink", "submodule"]
    size: int
    name: str
    path: str
    sha: str
    url: str
    git_url: str | None
    html_url: str | None
    download_url: str | None
    links: ContentLinksOut = Field(alias="_links")
    encoding: str | None = None
    content: str | None = None
    target: str | None = None
    submodule_git_url: str | None = None


class ContentsOut(RootModel[ContentOut | list[ContentOut]]):
    """One file, symlink or submodule (an object), or a directory listing (an array)."""


class TreeEntryOut(OutModel):
    path: str
    mode: str
    type: Literal["blob", "tree", "commit"]
    sha: str
    size: int | None = None
    url: str | None = None


class TreeOut(OutModel):
    sha: str
    url: str
    tree: list[TreeEntryOut]
    truncated: bool
