"""GET branches, one branch (names may contain `/`), and tags."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from app.errors import NotFound
from app.schemas.git import BranchLinksOut, BranchOut, BranchShortOut, ShaUrl, TagOut
from app.services import browse
from app.services.commits import read_commits
from app.web.api.commits import REPO, Urls, render_commit
from app.web.api.common import (
    ctx_of,
    json_response,
    paged_response,
    parse_page,
    principal_of,
)
from app.web.api.docs import doc

routes = web.RouteTableDef()


async def _handle(request: web.Request) -> browse.RepoHandle:
    return await browse.open_repo(
        ctx_of(request),
        principal_of(request),
        request.match_info["owner"],
        request.match_info["repo"],
    )


@routes.get(REPO + "/branches")
@doc(summary="List branches", response=BranchShortOut, response_is_list=True, tags=["branches"])
async def list_branches(request: web.Request) -> web.Response:
    page = parse_page(request)
    handle = await _handle(request)
    heads = await browse.list_refs(ctx_of(request), handle, "branches")
    urls = Urls(request, handle)
    items = [
        BranchShortOut(name=h.name, commit=ShaUrl(sha=h.sha, url=urls.commit(h.sha))).model_dump(
            mode="json"
        )
        for h in heads[page.offset : page.offset + page.per_page]
    ]
    return paged_response(request, items, page, len(heads))


@routes.get(REPO + r"/branches/{branch:[\s\S]+}")
@doc(summary="Get a branch with its head commit", response=BranchOut, tags=["branches"])
async def get_branch(request: web.Request) -> web.Response:
    name = request.match_info["branch"]
    ctx = ctx_of(request)
    handle = await _handle(request)
    async with browse.reader(ctx, handle) as cat:
        sha = await browse.branch_head(cat, name)
        if sha is None:
            raise NotFound("Branch not found")
        (commit,) = await read_commits(cat, [sha])
    urls = Urls(request, handle)
    out = BranchOut(
        name=name,
        commit=render_commit(urls, commit),
        links=BranchLinksOut(
            html=f"{urls.html}/tree/{quote(name)}",
            self_=f"{urls.api}/branches/{quote(name)}",
        ),
        protection_url=f"{urls.api}/branches/{quote(name)}/protection",
    )
    return json_response(out.model_dump(mode="json", by_alias=True))


@routes.get(REPO + "/tags")
@doc(summary="List tags", response=TagOut, response_is_list=True, tags=["tags"])
async def list_tags(request: web.Request) -> web.Response:
    page = parse_page(request)
    handle = await _handle(request)
    heads = await browse.list_refs(ctx_of(request), handle, "tags")
    urls = Urls(request, handle)
    items = [
        TagOut(
            name=h.name,
            commit=ShaUrl(sha=h.sha, url=urls.commit(h.sha)),
            zipball_url=f"{urls.api}/zipball/{quote(h.name, safe='')}",
            tarball_url=f"{urls.api}/tarball/{quote(h.name, safe='')}",
            node_id=f"REF_{h.sha}",
        ).model_dump(mode="json")
        for h in heads[page.offset : page.offset + page.per_page]
    ]
    return paged_response(request, items, page, len(heads))
