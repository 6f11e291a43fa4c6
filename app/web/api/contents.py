"""GET contents: a file (base64), a directory listing, or raw bytes on request."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from aiohttp import web

from app.git.trees import TreeEntry, blob_chunks
from app.schemas.git import ContentsOut, RefQuery
from app.services import browse
from app.web.api.commits import REPO, Urls
from app.web.api.common import ctx_of, json_response, parse_query, principal_of, stream_response
from app.web.api.docs import doc

routes = web.RouteTableDef()
RAW_TYPES = ("application/vnd.github.raw", "application/vnd.github.v3.raw")
_KIND = {"tree": "dir", "commit": "submodule"}


def wants_raw(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "").lower()
    return any(kind in accept for kind in RAW_TYPES)


def _entry(urls: Urls, ref: str, entry: TreeEntry, size: int | None = None) -> dict[str, Any]:
    """ContentOut's JSON, built directly (listings render one per entry; the tests
    validate the shape against ContentOut)."""
    kind = _KIND.get(entry.type, "symlink" if entry.mode == "120000" else "file")
    git_kind = "trees" if entry.type == "tree" else "blobs"
    self_url = urls.contents(entry.path, ref)
    html = f"{urls.html}/{'tree' if kind == 'dir' else 'blob'}/{quote(ref)}/{quote(entry.path)}"
    git_url = None if kind == "submodule" else f"{urls.api}/git/{git_kind}/{entry.sha}"
    return {
        "type": kind,
        "size": size if size is not None else (entry.size or 0),
        "name": entry.name,
        "path": entry.path,
        "sha": entry.sha,
        "url": self_url,
        "git_url": git_url,
        "html_url": html,
        "download_url": None,
        "_links": {"git": git_url, "html": html, "self": self_url},
    }


def _base64(data: bytes) -> str:
    """GitHub wraps base64 content at 60 characters a line."""
    text = base64.b64encode(data).decode("ascii")
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


@routes.get(REPO + "/contents")
@routes.get(REPO + r"/contents/{path:[\s\S]*}")
@doc(
    summary="Get a file or a directory listing (raw bytes with Accept: application/vnd.github.raw)",
    query=RefQuery,
    response=ContentsOut,
    tags=["contents"],
    errors=(401, 403, 404, 422),
    raw_content_types=RAW_TYPES,
)
async def get_contents(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, RefQuery)
    path = browse.check_path(request.match_info.get("path", ""))
    if query.ref is not None:
        browse.check_ref(query.ref)
    ctx = ctx_of(request)
    handle = await browse.open_repo(
        ctx, principal_of(request), request.match_info["owner"], request.match_info["repo"]
    )
    ref = query.ref or handle.repo.default_branch
    raw = wants_raw(request)
    async with browse.reader(ctx, handle) as cat:
        commit = await browse.commit_or_default(cat, handle, ref)
        found = await browse.contents(cat, commit, path)
    urls = Urls(request, handle)
    if isinstance(found, browse.DirContent):
        return json_response([_entry(urls, ref, e) for e in found.entries])
    if isinstance(found, browse.OtherContent):
        out = _entry(urls, ref, found.entry, 0)
        if found.data is not None:
            out["target"] = found.data.decode("utf-8", "replace")
            out["size"] = len(found.data)
        else:
            out["submodule_git_url"] = None
        return json_response(out)
    if raw:
        return await _raw(request, handle, found)
    out = _entry(urls, ref, found.entry, found.size)
    if found.data is None:
        out["encoding"], out["content"] = "none", ""
    else:
        out["encoding"], out["content"] = "base64", _base64(found.data)
    return json_response(out)


async def _raw(
    request: web.Request, handle: browse.RepoHandle, found: browse.FileContent
) -> web.StreamResponse:
    headers = {"Content-Type": "application/vnd.github.raw", "ETag": f'"{found.entry.sha}"'}
    if found.data is not None:
        return web.Response(body=found.data, headers=headers)
    chunks = blob_chunks(ctx_of(request).git, handle.path, found.entry.sha)
    response = web.StreamResponse(headers={**headers, "Content-Length": str(found.size)})
    return await stream_response(request, response, chunks)
