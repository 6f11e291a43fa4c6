"""GET git/trees/{sha_or_ref}: one tree, or the whole tree with `recursive` (truncated past
GitHub's limits: 100,000 entries or about 7 MB)."""

from __future__ import annotations

from aiohttp import web

from app.git.trees import TreeEntry
from app.schemas.git import TreeOut, TreeQuery
from app.services import browse
from app.web.api.commits import REPO, Urls
from app.web.api.common import ctx_of, json_response, parse_query, principal_of
from app.web.api.docs import doc
from app.web.keys import SETTINGS

routes = web.RouteTableDef()


def _entry(urls: Urls, entry: TreeEntry) -> dict[str, object]:
    """TreeEntryOut's JSON (no `size` for trees, no `url` for submodules), built directly:
    a recursive tree renders up to 100,000 of these."""
    out: dict[str, object] = {
        "path": entry.path,
        "mode": entry.mode,
        "type": entry.type,
        "sha": entry.sha,
    }
    if entry.type == "blob" and entry.size is not None:
        out["size"] = entry.size
    kind = _URL_KIND.get(entry.type)
    if kind:
        out["url"] = f"{urls.api}/git/{kind}/{entry.sha}"
    return out


_URL_KIND = {"tree": "trees", "blob": "blobs"}


@routes.get(REPO + r"/git/trees/{sha:[\s\S]+}")
@doc(
    summary="Get a tree (recursive=1: every entry below it)",
    query=TreeQuery,
    response=TreeOut,
    tags=["git"],
)
async def get_tree(request: web.Request) -> web.Response:
    query = parse_query(request, TreeQuery)
    ctx = ctx_of(request)
    handle = await browse.open_repo(
        ctx, principal_of(request), request.match_info["owner"], request.match_info["repo"]
    )
    settings = request.app[SETTINGS]
    found = await browse.tree(
        ctx,
        handle,
        request.match_info["sha"],
        recursive=query.recursive is not None,
        max_entries=settings.api_tree_max_entries,
        max_bytes=settings.api_tree_max_bytes,
    )
    urls = Urls(request, handle)
    body = {
        "sha": found.sha,
        "url": f"{urls.api}/git/trees/{found.sha}",
        "tree": [_entry(urls, e) for e in found.entries],
        "truncated": found.truncated,
    }
    return json_response(body)
