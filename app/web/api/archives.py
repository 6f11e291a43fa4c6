"""GET tarball/zipball: a 302 to a signed, short-lived URL that streams `git archive`."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from app.errors import NotFound
from app.schemas.git import ArchiveQuery
from app.services import archives, browse
from app.web.api.commits import REPO, Urls
from app.web.api.common import ctx_of, parse_query, principal_of, stream_response
from app.web.api.docs import doc

routes = web.RouteTableDef()
_FORMATS = {"tarball": "tar.gz", "zipball": "zip"}
_TYPES = {"tar.gz": "application/x-gzip", "zip": "application/zip"}


async def _link(request: web.Request, kind: str) -> web.Response:
    ctx = ctx_of(request)
    handle = await browse.open_repo(
        ctx, principal_of(request), request.match_info["owner"], request.match_info["repo"]
    )
    link = await archives.make_link(ctx, handle, request.match_info.get("ref"), _FORMATS[kind])
    query = urlencode({"expires": link.expires, "signature": link.signature})
    location = f"{Urls(request, handle).api}/archive/{link.sha}.{link.fmt}?{query}"
    return web.Response(status=302, headers={"Location": location})


@routes.get(REPO + "/tarball")
@routes.get(REPO + r"/tarball/{ref:[\s\S]+}")
@doc(summary="Redirect (302) to a tar.gz archive of a ref", status=302, tags=["archives"])
async def tarball(request: web.Request) -> web.Response:
    return await _link(request, "tarball")


@routes.get(REPO + "/zipball")
@routes.get(REPO + r"/zipball/{ref:[\s\S]+}")
@doc(summary="Redirect (302) to a zip archive of a ref", status=302, tags=["archives"])
async def zipball(request: web.Request) -> web.Response:
    return await _link(request, "zipball")


@routes.get(REPO + "/archive/{name}")
@doc(
    summary="Stream the archive of a commit (the target of the tarball/zipball redirect)",
    query=ArchiveQuery,
    tags=["archives"],
    raw_content_types=tuple(_TYPES.values()),
)
async def download(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, ArchiveQuery)
    name = request.match_info["name"]
    sha, _, fmt = name.partition(".")
    if fmt not in _TYPES:
        raise NotFound("Not Found")
    ctx = ctx_of(request)
    handle = await archives.authorize_download(
        ctx,
        principal_of(request),
        request.match_info["owner"],
        request.match_info["repo"],
        sha,
        fmt,
        query.expires,
        query.signature,
    )
    chunks = archives.stream_archive(ctx, handle, sha, fmt)
    filename = f"{archives.archive_name(handle, sha)}.{fmt}"
    response = web.StreamResponse(
        headers={
            "Content-Type": _TYPES[fmt],
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, max-age=300",
        }
    )
    return await stream_response(request, response, chunks)
