"""`GET /api/v1/repos/{owner}/{repo}/events?since_id=`: the stored events of a repository,
oldest first, each exactly the object the WebSocket stream sends (CONTRACT §5), paginated
with `page`/`per_page` and a GitHub-style Link header."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from app.events.wire import EventMessage, message_text
from app.services.events import repo_events_page
from app.services.repos import find_repo
from app.web.api.common import PREFIX, ctx_of, link_header, parse_page, parse_query, principal_of
from app.web.api.docs import doc

routes = web.RouteTableDef()


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since_id: int = Field(0, ge=0, le=2**63 - 1, description="only events with a larger id")


@routes.get(f"{PREFIX}/repos/{{owner}}/{{repo}}/events")
@doc(
    summary="List a repository's stored events, oldest first",
    query=EventsQuery,
    response=EventMessage,
    response_is_list=True,
    tags=["events"],
    errors=(401, 404, 422),
)
async def list_repo_events(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, EventsQuery)
    page = parse_page(request)
    ctx = ctx_of(request)
    repo, _ = await find_repo(
        ctx, principal_of(request), request.match_info["owner"], request.match_info["repo"]
    )
    events, total = await repo_events_page(
        ctx, repo, since_id=query.since_id, offset=page.offset, limit=page.per_page
    )
    headers = {}
    link = link_header(request, page, total)
    if link:
        headers["Link"] = link
    # The stored payloads are JSON already: spliced in, never parsed and dumped again.
    body = "[" + ",".join(message_text(event) for event in events) + "]"
    return web.Response(text=body, content_type="application/json", headers=headers)
