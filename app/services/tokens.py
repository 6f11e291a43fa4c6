"""Personal access tokens managed over the API: created with scopes (and an optional
expiry), listed without their secret, deleted."""

from __future__ import annotations

from datetime import UTC, datetime

from app.auth.tokens import new_token, parse_scopes, token_hash
from app.errors import Invalid, NotFound
from app.services.context import AppContext
from app.store.records import Token, User


async def create_personal_token(
    ctx: AppContext,
    user: User,
    *,
    name: str,
    scopes: str | list[str],
    expires_at: datetime | None = None,
) -> tuple[Token, str]:
    """The stored token and its secret, which is shown once and kept only as a hash."""
    try:
        scope_list = parse_scopes(scopes)
    except ValueError as exc:
        raise Invalid.field("Token", "scopes", message=str(exc)) from exc
    if not name or len(name) > 100:
        raise Invalid.field("Token", "name", message="1 to 100 characters")
    if expires_at is not None:
        expires_at = expires_at.astimezone(UTC).replace(microsecond=0)
        if expires_at <= datetime.now(UTC):
            raise Invalid.field("Token", "expires_at", message="must be in the future")
    secret = new_token()
    token = await ctx.store.create_token(
        user.id,
        name=name,
        token_hash=token_hash(secret),
        last_eight=secret[-8:],
        scopes=scope_list,
        expires_at=expires_at,
    )
    return token, secret


async def list_tokens(ctx: AppContext, user: User) -> list[Token]:
    return await ctx.store.list_tokens(user.id)


async def delete_token(ctx: AppContext, user: User, token_id: int) -> None:
    if token_id > 2**63 - 1 or not await ctx.store.delete_token(user.id, token_id):
        raise NotFound("Not Found")
