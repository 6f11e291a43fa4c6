"""Users and their personal access tokens."""

from __future__ import annotations

from app.auth.passwords import MIN_PASSWORD_LENGTH, hash_password_async
from app.errors import Conflict, Invalid, NotFound
from app.git.names import check_owner
from app.services.context import AppContext
from app.services.tokens import create_personal_token
from app.store.records import Duplicate, Token, User

# Names that would shadow the server's own top-level paths (/api/v1/... is the REST API,
# so a user `api` could never clone `api/v1`).
RESERVED_LOGINS = frozenset({"api"})


async def create_user(
    ctx: AppContext,
    login: str,
    *,
    password: str | None,
    email: str | None = None,
    is_admin: bool = False,
) -> User:
    check_owner(login, field="login")
    if login.lower() in RESERVED_LOGINS:
        raise Invalid.field("User", "login", message=f"{login!r} is a reserved name")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid.field(
            "User", "password", message=f"must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    if email is not None and ("@" not in email or len(email) > 320):
        raise Invalid.field("User", "email", message="not an e-mail address")
    password_hash = await hash_password_async(password) if password else None
    try:
        return await ctx.store.create_user(
            login, email=email, password_hash=password_hash, is_admin=is_admin
        )
    except Duplicate as exc:
        raise Conflict("User", "login") from exc


async def get_user(ctx: AppContext, login: str) -> User:
    user = await ctx.store.user_by_login(login) if len(login) <= 39 else None
    if user is None:
        raise NotFound("Not Found")
    return user


async def create_token(
    ctx: AppContext, user: User, *, name: str, scopes: str | list[str]
) -> tuple[Token, str]:
    """Returns the stored token and its secret, which is never shown again."""
    return await create_personal_token(ctx, user, name=name, scopes=scopes)
