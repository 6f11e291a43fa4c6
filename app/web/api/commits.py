"""GET commits (history), one commit with its files, and compare BASE...HEAD."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from app.git.history import Commit, FileChange
from app.schemas.git import (
    CommitDetailOut,
    CommitFileOut,
    CommitOut,
    CommitsQuery,
    CommitStatsOut,
    CompareOut,
    CompareQuery,
    VerificationOut,
)
from app.services import commits as service
from app.services.browse import RepoHandle, open_repo
from app.web.api.common import (
    api_url,
    base_url,
    ctx_of,
    iso,
    json_response,
    paged_response,
    parse_page,
    parse_query,
    principal_of,
)
from app.web.api.docs import doc

routes = web.RouteTableDef()
REPO = "/api/v1/repos/{owner}/{repo}"


class Urls:
    """Absolute URLs of one repository, from the request's own scheme, host and port."""

    def __init__(self, request: web.Request, handle: RepoHandle):
        full = f"{handle.repo.owner}/{handle.repo.name}"
        self.api = api_url(request, f"/repos/{full}")
        self.html = f"{base_url(request)}/{full}"

    def commit(self, sha: str) -> str:
        return f"{self.api}/commits/{sha}"

    def contents(self, path: str, ref: str) -> str:
        return f"{self.api}/contents/{quote(path)}?ref={quote(ref, safe='')}"


def _ts(value: datetime) -> str:
    return iso(value) or ""


def render_commit(urls: Urls, commit: Commit) -> CommitOut:
    return CommitOut.model_validate(commit_dict(urls, commit))


def commit_dict(urls: Urls, c: Commit) -> dict[str, Any]:
    """A commit as CommitOut's JSON, built directly: history pages render thirty of these
    per request (tests and schemathesis validate the shape against CommitOut)."""
    url = urls.commit(c.sha)
    return {
        "sha": c.sha,
        "node_id": f"C_{c.sha}",
        "commit": {
            "url": f"{urls.api}/git/commits/{c.sha}",
            "author": {"name": c.author.name, "email": c.author.email, "date": _ts(c.author.date)},
            "committer": {
                "name": c.committer.name,
                "email": c.committer.email,
                "date": _ts(c.committer.date),
            },
            "message": c.message,
            "tree": {"sha": c.tree, "url": f"{urls.api}/git/trees/{c.tree}"},
            "comment_count": 0,
            "verification": _UNSIGNED,
        },
        "url": url,
        "html_url": f"{urls.html}/commit/{c.sha}",
        "comments_url": f"{url}/comments",
        "author": None,
        "committer": None,
        "parents": [
            {"sha": p, "url": urls.commit(p), "html_url": f"{urls.html}/commit/{p}"}
            for p in c.parents
        ],
    }


_UNSIGNED = VerificationOut().model_dump(mode="json")


def render_file(urls: Urls, sha: str, f: FileChange) -> CommitFileOut:
    removed = f.status == "removed"
    return CommitFileOut(
        sha=None if removed else f.new_sha,
        filename=f.filename,
        status=f.status,
        additions=f.additions,
        deletions=f.deletions,
        changes=f.additions + f.deletions,
        blob_url=f"{urls.html}/blob/{sha}/{quote(f.filename)}",
        raw_url=f"{urls.html}/raw/{sha}/{quote(f.filename)}",
        contents_url=urls.contents(f.filename, sha),
        patch=f.patch,
        previous_filename=f.previous_filename,
    )


@routes.get(REPO + "/commits")
@doc(
    summary="List commits, newest first",
    query=CommitsQuery,
    response=CommitOut,
    response_is_list=True,
    tags=["commits"],
    errors=(401, 404, 409, 422),
)
async def list_commits(request: web.Request) -> web.Response:
    query = parse_query(request, CommitsQuery)
    page = parse_page(request)
    ctx = ctx_of(request)
    handle = await open_repo(
        ctx, principal_of(request), request.match_info["owner"], request.match_info["repo"]
    )
    found, total = await service.list_commits(
        ctx,
        handle,
        service.CommitQuery(query.sha, query.path, query.since, query.until, query.author),
        skip=page.offset,
        limit=page.per_page,
    )
    urls = Urls(request, handle)
    items = [commit_dict(urls, c) for c in found]
    return paged_response(request, items, page, total)


@routes.get(REPO + r"/commits/{ref:[\s\S]+}")
@doc(summary="Get a commit with its files and stats", response=CommitDetailOut, tags=["commits"])
async def get_commit(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    handle = await open_repo(
        ctx, principal_of(request), request.match_info["owner"], request.match_info["repo"]
    )
    commit, changes = await service.get_commit(ctx, handle, request.match_info["ref"])
    urls = Urls(request, handle)
    out = CommitDetailOut(
        **commit_dict(urls, commit),
        stats=CommitStatsOut(
            additions=changes.additions,
            deletions=changes.deletions,
            total=changes.additions + changes.deletions,
        ),
        files=[render_file(urls, commit.sha, f) for f in changes.files],
    )
    return json_response(out.model_dump(mode="json"))


@routes.get(REPO + r"/compare/{basehead:[\s\S]+}")
@doc(
    summary="Compare two commits (BASE...HEAD)",
    query=CompareQuery,
    response=CompareOut,
    tags=["commits"],
)
async def compare(request: web.Request) -> web.Response:
    raw = dict(request.query)
    if raw.get("per_page", "").isdigit() and int(raw["per_page"]) > 1000:
        raw["per_page"] = "1000"
    query = CompareQuery.model_validate(raw)
    ctx = ctx_of(request)
    handle = await open_repo(
        ctx, principal_of(request), request.match_info["owner"], request.match_info["repo"]
    )
    basehead = request.match_info["basehead"]
    result = await service.compare(
        ctx,
        handle,
        basehead,
        skip=(query.page - 1) * query.per_page,
        limit=query.per_page,
    )
    urls = Urls(request, handle)
    out = CompareOut(
        url=f"{urls.api}/compare/{quote(basehead, safe='.')}",
        html_url=f"{urls.html}/compare/{quote(basehead, safe='.')}",
        permalink_url=f"{urls.html}/compare/{result.base.sha}...{result.head.sha}",
        diff_url=f"{urls.html}/compare/{quote(basehead, safe='.')}.diff",
        patch_url=f"{urls.html}/compare/{quote(basehead, safe='.')}.patch",
        base_commit=render_commit(urls, result.base),
        merge_base_commit=render_commit(urls, result.merge_base),
        status=result.status,
        ahead_by=result.ahead_by,
        behind_by=result.behind_by,
        total_commits=result.ahead_by,
        commits=[render_commit(urls, c) for c in result.commits],
        files=[render_file(urls, result.head.sha, f) for f in result.files.files],
    )
    return json_response(out.model_dump(mode="json"))
