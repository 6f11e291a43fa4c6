"""Personal access tokens of the authenticated user: list, create (secret shown once), delete."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.auth.access import Access
from app.errors import NotFound
from app.schemas.common import MAX_ID
from app.schemas.users import TokenCreate, TokenCreatedOut, TokenOut
from app.services import tokens as service
from app.store.records import Token
from app.web.api.common import (
    PREFIX,
    api_url,
    ctx_of,
    iso,
    json_response,
    paged_response,
    parse_body,
    parse_page,
    require_user,
)
from app.web.api.docs import doc
from app.web.api.users import require_scope

routes = web.RouteTableDef()


def token_json(request: web.Request, token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "note": token.name,
        "scopes": sorted(token.scopes),
        "token_last_eight": token.token_last_eight,
        "url": api_url(request, f"/user/tokens/{token.id}"),
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
        "expires_at": iso(token.expires_at),
    }


@routes.get(f"{PREFIX}/user/tokens")
@doc(
    summary="The authenticated user's tokens (never their secrets)",
    response=TokenOut,
    response_is_list=True,
    tags=["tokens"],
    errors=(401, 422),
)
async def list_tokens(request: web.Request) -> web.Response:
    user = require_user(request)
    page = parse_page(request)
    found = await service.list_tokens(ctx_of(request), user)
    chunk = found[page.offset : page.offset + page.per_page]
    items = [TokenOut.model_validate(token_json(request, t)).model_dump(mode="json") for t in chunk]
    return paged_response(request, items, page, len(found))


@routes.post(f"{PREFIX}/user/tokens")
@doc(
    summary="Create a token (needs the admin scope); `token` in this answer is the only copy",
    body=TokenCreate,
    response=TokenCreatedOut,
    status=201,
    tags=["tokens"],
    errors=(400, 401, 403, 422),
)
async def create_token(request: web.Request) -> web.Response:
    user = require_scope(request, Access.ADMIN)
    body = await parse_body(request, TokenCreate)
    token, secret = await service.create_personal_token(
        ctx_of(request),
        user,
        name=body.name or body.note or "token",
        scopes=list(body.scopes),
        expires_at=body.expires_at,
    )
    data = token_json(request, token) | {"token": secret}
    return json_response(TokenCreatedOut.model_validate(data).model_dump(mode="json"), status=201)


@routes.delete(f"{PREFIX}/user/tokens/{{token_id:[0-9]+}}")
@doc(summary="Delete a token", status=204, tags=["tokens"], errors=(401, 403, 404))
async def delete_token(request: web.Request) -> web.Response:
    user = require_scope(request, Access.ADMIN)
    token_id = int(request.match_info["token_id"][:25])
    if token_id > MAX_ID:
        raise NotFound("Not Found")
    await service.delete_token(ctx_of(request), user, token_id)
    return web.Response(status=204)
