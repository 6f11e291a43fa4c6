"""Turning credentials into a Principal. Only identifies: never decides access."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from app.auth import jwt as jwt_auth
from app.auth.access import ANONYMOUS, Principal
from app.auth.passwords import verify_password_async
from app.auth.tokens import looks_like_token, token_hash
from app.errors import Unauthorized
from app.services.context import AppContext


class BadCredentials(Unauthorized):
    """Credentials were sent and are wrong (counts as a failed login)."""

    default_message = "Bad credentials"

    def __init__(self, login: str | None = None):
        super().__init__()
        self.login = login


async def principal_from_header(ctx: AppContext, header: str | None) -> Principal:
    """Authorization header -> Principal; no header is anonymous; a bad one raises."""
    if not header:
        return ANONYMOUS
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic":
        login, password = _decode_basic(value)
        return await from_basic(ctx, login, password)
    if scheme in ("bearer", "token") and value:
        return await from_secret(ctx, value)
    raise BadCredentials()


def _decode_basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BadCredentials() from exc
    login, sep, password = decoded.partition(":")
    if not sep:
        raise BadCredentials()
    return login, password


async def from_basic(ctx: AppContext, login: str, password: str) -> Principal:
    """Basic: a token in the password field works with any user name (as on GitHub), and
    so does GitHub's other form, the token as user name (`TOKEN:` or `TOKEN:x-oauth-basic`)."""
    if looks_like_token(password):
        return await from_token(ctx, password)
    if looks_like_token(login) and password in ("", "x-oauth-basic"):
        return await from_token(ctx, login)
    if not login or not password or len(login) > 39 or len(password) > 1024:
        raise BadCredentials(login or None)
    user = await ctx.store.user_by_login(login)
    stored_hash = user.password_hash if user else None
    if user is not None and ctx.credentials.get(login, password, stored_hash) == user.id:
        return Principal(user, method="password")
    if not await verify_password_async(stored_hash, password) or user is None:
        raise BadCredentials(login)
    ctx.credentials.put(login, password, user.id, stored_hash)
    return Principal(user, method="password")


async def from_secret(ctx: AppContext, value: str) -> Principal:
    if jwt_auth.looks_like_jwt(value):
        user_id = jwt_auth.verify(ctx.secret_key, value)
        user = await ctx.store.user_by_id(user_id) if user_id is not None else None
        if user is None:
            raise BadCredentials()
        return Principal(user, method="jwt")
    return await from_token(ctx, value)


async def from_token(ctx: AppContext, value: str) -> Principal:
    found = await ctx.store.token_by_hash(token_hash(value)) if looks_like_token(value) else None
    if found is None:
        raise BadCredentials()
    token, user = found
    if token.expires_at is not None and token.expires_at <= datetime.now(UTC):
        raise BadCredentials()
    return Principal(user, scopes=token.scopes, token_id=token.id, method="token")
