"""POST /auth/token: username and password in, a short-lived JWT out."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from app.auth import jwt as jwt_auth
from app.auth.passwords import verify_password_async
from app.schemas.users import JwtOut, TokenRequest
from app.services.identity import BadCredentials
from app.web.api.common import PREFIX, ctx_of, iso, json_response, parse_body
from app.web.api.docs import doc

routes = web.RouteTableDef()


@routes.post(f"{PREFIX}/auth/token")
@doc(
    summary="Exchange a password for a JWT (use it as `Authorization: Bearer <token>`)",
    body=TokenRequest,
    response=JwtOut,
    tags=["auth"],
    errors=(400, 401, 422),
)
async def issue_token(request: web.Request) -> web.Response:
    """Passwords only: a personal access token cannot be traded for a JWT (that would widen
    its scopes). A wrong password counts as a failed login."""
    ctx = ctx_of(request)
    body = await parse_body(request, TokenRequest)
    user = await ctx.store.user_by_login(body.username)
    stored_hash = user.password_hash if user else None
    if not await verify_password_async(stored_hash, body.password) or user is None:
        raise BadCredentials(body.username)
    token, expires = jwt_auth.issue(ctx.secret_key, user.id, ctx.settings.jwt_ttl_seconds)
    expires_at = iso(datetime.fromtimestamp(expires, UTC))
    answer = JwtOut(token=token, token_type="bearer", expires_at=expires_at or "")  # noqa: S106
    return json_response(answer.model_dump())
