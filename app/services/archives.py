"""Archive links: resolve the ref, sign a short-lived download URL, check it on download.

The 302 target carries the resolved commit id, an expiry and an HMAC over (repository
id, id, format, expiry) made with the server's secret key, so `curl -L` and PyGithub's
`get_archive_link` work without credentials on the second request while a private
repository's archive never leaks: without a valid signature the download route falls
back to the ordinary access check of the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.auth.access import Principal
from app.errors import Invalid, NotFound
from app.git.archive import FORMATS, archive_chunks
from app.git.names import SHA_RE, route_names
from app.services.browse import RepoHandle, check_ref, commit_or_default, open_repo, reader
from app.services.context import AppContext

LINK_TTL = 300


@dataclass(frozen=True)
class ArchiveLink:
    sha: str
    fmt: str
    expires: int
    signature: str


def _sign(secret: str, repo_id: int, sha: str, fmt: str, expires: int) -> str:
    message = f"archive\x00{repo_id}\x00{sha}\x00{fmt}\x00{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]


async def make_link(ctx: AppContext, handle: RepoHandle, ref: str | None, fmt: str) -> ArchiveLink:
    if ref is not None:
        check_ref(ref)
    async with reader(ctx, handle) as cat:
        sha = await commit_or_default(cat, handle, ref)
    expires = int(time.time()) + LINK_TTL
    return ArchiveLink(sha, fmt, expires, _sign(ctx.secret_key, handle.repo.id, sha, fmt, expires))


def archive_name(handle: RepoHandle, sha: str) -> str:
    """GitHub's folder name inside the archive: owner-repo-shortsha."""
    return f"{handle.repo.owner}-{handle.repo.name}-{sha[:7]}"


async def authorize_download(
    ctx: AppContext,
    principal: Principal,
    owner: str,
    name: str,
    sha: str,
    fmt: str,
    expires: int | None,
    signature: str | None,
) -> RepoHandle:
    """The repository whose archive may be sent: a valid signed link, or read access."""
    if fmt not in FORMATS or not SHA_RE.match(sha):
        raise NotFound("Not Found")
    handle: RepoHandle | None = None
    if expires is not None and signature and expires >= time.time():
        owner_, name_ = route_names(owner, name)
        repo = await ctx.store.repo_by_name(owner_, name_)
        if repo is not None:
            wanted = _sign(ctx.secret_key, repo.id, sha, fmt, expires)
            if hmac.compare_digest(wanted, signature):
                handle = RepoHandle(repo, ctx.storage.path(repo.owner, repo.name))
    if handle is None:  # no valid link: the caller's own access decides (404)
        handle = await open_repo(ctx, principal, owner, name)
    async with reader(ctx, handle) as cat:
        info = await cat.info(sha)
    if info is None or info.type != "commit":
        raise NotFound("Not Found")
    return handle


def stream_archive(ctx: AppContext, handle: RepoHandle, sha: str, fmt: str) -> AsyncIterator[bytes]:
    if fmt not in FORMATS:
        raise Invalid.field("Archive", "format")
    return archive_chunks(ctx.git, handle.path, sha, fmt, archive_name(handle, sha))
