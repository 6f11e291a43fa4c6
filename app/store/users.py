"""Users and personal access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.store.base import StoreBase, as_utc, must_utc, utcnow
from app.store.records import Duplicate, Token, User
from app.store.tables import tokens, users


def user_from_row(row: Any, *, prefix: str = "") -> User:
    m = row._mapping
    return User(
        id=m[f"{prefix}id"],
        login=m[f"{prefix}login"],
        email=m[f"{prefix}email"],
        is_admin=bool(m[f"{prefix}is_admin"]),
        created_at=must_utc(m[f"{prefix}created_at"]),
        updated_at=must_utc(m[f"{prefix}updated_at"]),
        password_hash=m[f"{prefix}password_hash"],
    )


def _token_from_row(row: Any) -> Token:
    m = row._mapping
    return Token(
        id=m["id"],
        user_id=m["user_id"],
        name=m["name"],
        scopes=frozenset(s for s in m["scopes"].split(",") if s),
        token_last_eight=m["token_last_eight"],
        created_at=must_utc(m["created_at"]),
        last_used_at=as_utc(m["last_used_at"]),
        expires_at=as_utc(m["expires_at"]),
    )


class UserStore(StoreBase):
    async def create_user(
        self, login: str, *, email: str | None, password_hash: str | None, is_admin: bool = False
    ) -> User:
        now = utcnow()
        values = {
            "login": login,
            "login_lower": login.lower(),
            "email": email,
            "password_hash": password_hash,
            "is_admin": is_admin,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.write() as conn:
                result = await conn.execute(users.insert().values(**values))
                user_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        except sa.exc.IntegrityError as exc:
            raise Duplicate("login") from exc
        assert user_id is not None
        return User(
            id=user_id,
            login=login,
            email=email,
            is_admin=is_admin,
            created_at=now,
            updated_at=now,
            password_hash=password_hash,
        )

    async def user_by_login(self, login: str) -> User | None:
        async with self.read() as conn:
            row = (
                await conn.execute(sa.select(users).where(users.c.login_lower == login.lower()))
            ).first()
        return user_from_row(row) if row else None

    async def user_by_id(self, user_id: int) -> User | None:
        async with self.read() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
        return user_from_row(row) if row else None

    async def list_users(self, *, since: int = 0, limit: int = 30) -> list[User]:
        query = sa.select(users).where(users.c.id > since).order_by(users.c.id).limit(limit)
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
        return [user_from_row(row) for row in rows]

    async def count_users(self) -> int:
        async with self.read() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
            )

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        async with self.write() as conn:
            await conn.execute(
                users.update()
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, updated_at=utcnow())
            )

    # Tokens ---------------------------------------------------------------
    async def create_token(
        self,
        user_id: int,
        *,
        name: str,
        token_hash: str,
        last_eight: str,
        scopes: Sequence[str],
        expires_at: datetime | None = None,
    ) -> Token:
        now = utcnow()
        values = {
            "user_id": user_id,
            "name": name,
            "token_hash": token_hash,
            "token_last_eight": last_eight,
            "scopes": ",".join(sorted(set(scopes))),
            "created_at": now,
            "expires_at": expires_at,
        }
        async with self.write() as conn:
            result = await conn.execute(tokens.insert().values(**values))
            token_id = result.inserted_primary_key[0] if result.inserted_primary_key else 0
        return Token(
            id=token_id,
            user_id=user_id,
            name=name,
            scopes=frozenset(scopes),
            token_last_eight=last_eight,
            created_at=now,
            last_used_at=None,
            expires_at=expires_at,
        )

    async def token_by_hash(self, token_hash: str) -> tuple[Token, User] | None:
        query = (
            sa.select(tokens, *[c.label(f"u_{c.name}") for c in users.c])
            .join(users, users.c.id == tokens.c.user_id)
            .where(tokens.c.token_hash == token_hash)
        )
        async with self.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return _token_from_row(row), user_from_row(row, prefix="u_")

    async def list_tokens(self, user_id: int) -> list[Token]:
        query = sa.select(tokens).where(tokens.c.user_id == user_id).order_by(tokens.c.id)
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_token_from_row(row) for row in rows]

    async def delete_token(self, user_id: int, token_id: int) -> bool:
        async with self.write() as conn:
            result = await conn.execute(
                tokens.delete().where(tokens.c.id == token_id, tokens.c.user_id == user_id)
            )
        return bool(result.rowcount)

    async def touch_token(self, token_id: int) -> None:
        async with self.write() as conn:
            await conn.execute(
                tokens.update().where(tokens.c.id == token_id).values(last_used_at=utcnow())
            )
