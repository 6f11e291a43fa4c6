"""Repositories and collaborators."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa

from app.store.base import StoreBase, as_utc, must_utc, utcnow
from app.store.lookup_cache import MISSING
from app.store.records import Collaborator, Duplicate, Repo, User
from app.store.tables import collaborators, repositories, users
from app.store.users import user_from_row

_REPO_COLUMNS = (*repositories.c, users.c.login.label("owner_login"))


def _repo_from_row(row: Any) -> Repo:
    m = row._mapping
    return Repo(
        id=m["id"],
        owner_id=m["owner_id"],
        owner=m["owner_login"],
        name=m["name"],
        description=m["description"] or "",
        private=bool(m["private"]),
        default_branch=m["default_branch"],
        created_at=must_utc(m["created_at"]),
        updated_at=must_utc(m["updated_at"]),
        pushed_at=as_utc(m["pushed_at"]),
    )


def _repo_select() -> sa.Select[Any]:
    return sa.select(*_REPO_COLUMNS).join(users, users.c.id == repositories.c.owner_id)


def visible_to(viewer: User | None) -> sa.ColumnElement[bool]:
    """SQL filter: the repositories a viewer may read (admins read everything)."""
    if viewer is None:
        return repositories.c.private.is_(False)
    if viewer.is_admin:
        return sa.true()
    shared = sa.select(collaborators.c.repo_id).where(collaborators.c.user_id == viewer.id)
    return sa.or_(
        repositories.c.private.is_(False),
        repositories.c.owner_id == viewer.id,
        repositories.c.id.in_(shared),
    )


def _repo_order(order: str, descending: bool) -> list[sa.ColumnElement[Any]]:
    by_name = [users.c.login_lower, repositories.c.name_lower]
    column = {
        "created": repositories.c.created_at,
        "updated": repositories.c.updated_at,
        "pushed": repositories.c.pushed_at,
    }.get(order)
    columns: list[sa.ColumnElement[Any]] = [*by_name] if column is None else [column, *by_name]
    if column is not None:
        columns.append(repositories.c.id)
    if descending:
        return [c.desc() for c in columns]
    return columns


class RepoStore(StoreBase):
    async def create_repo(
        self, owner: User, name: str, *, description: str, private: bool, default_branch: str
    ) -> Repo:
        now = utcnow()
        values = {
            "owner_id": owner.id,
            "name": name,
            "name_lower": name.lower(),
            "description": description,
            "private": private,
            "default_branch": default_branch,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.write() as conn:
                result = await conn.execute(repositories.insert().values(**values))
                repo_id = result.inserted_primary_key[0] if result.inserted_primary_key else 0
        except sa.exc.IntegrityError as exc:
            raise Duplicate("name") from exc
        return Repo(
            id=repo_id,
            owner_id=owner.id,
            owner=owner.login,
            name=name,
            description=description,
            private=private,
            default_branch=default_branch,
            created_at=now,
            updated_at=now,
            pushed_at=None,
        )

    async def repo_by_name(self, owner: str, name: str) -> Repo | None:
        key = ("repo", owner.lower(), name.lower())
        cached = self.lookups.get(key)
        if cached is not MISSING:
            return cast(Repo, cached)
        query = _repo_select().where(
            users.c.login_lower == owner.lower(), repositories.c.name_lower == name.lower()
        )
        async with self.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None  # never remembered: a repository created elsewhere is found at once
        repo = _repo_from_row(row)
        self.lookups.put(key, repo)
        return repo

    async def repo_by_id(self, repo_id: int) -> Repo | None:
        async with self.read() as conn:
            row = (await conn.execute(_repo_select().where(repositories.c.id == repo_id))).first()
        return _repo_from_row(row) if row else None

    async def list_repos(
        self,
        viewer: User | None,
        *,
        owner_id: int | None = None,
        offset: int = 0,
        limit: int = 30,
        member_id: int | None = None,
        private: bool | None = None,
        exclude_owner_id: int | None = None,
        order: str = "full_name",
        descending: bool = False,
    ) -> tuple[list[Repo], int]:
        """Repositories visible to viewer (optionally of one owner, or owned/shared with a
        member; only public or private ones; not of one owner), ordered by full name (or
        `order` = created | updated | pushed); returns (page, total)."""
        where = [visible_to(viewer)]
        if owner_id is not None:
            where.append(repositories.c.owner_id == owner_id)
        if exclude_owner_id is not None:
            where.append(repositories.c.owner_id != exclude_owner_id)
        if private is not None:
            where.append(repositories.c.private.is_(private))
        if member_id is not None:
            shared = sa.select(collaborators.c.repo_id).where(collaborators.c.user_id == member_id)
            where.append(
                sa.or_(repositories.c.owner_id == member_id, repositories.c.id.in_(shared))
            )
        query = (
            _repo_select()
            .where(*where)
            .order_by(*_repo_order(order, descending))
            .offset(offset)
            .limit(limit)
        )
        count = (
            sa.select(sa.func.count())
            .select_from(repositories.join(users, users.c.id == repositories.c.owner_id))
            .where(*where)
        )
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
            total = int((await conn.execute(count)).scalar_one())
        return [_repo_from_row(row) for row in rows], total

    async def update_repo(self, repo_id: int, **values: Any) -> None:
        self.lookups.clear()
        if "name" in values:
            values["name_lower"] = values["name"].lower()
        values["updated_at"] = utcnow()
        try:
            async with self.write() as conn:
                await conn.execute(
                    repositories.update().where(repositories.c.id == repo_id).values(**values)
                )
        except sa.exc.IntegrityError as exc:
            raise Duplicate("name") from exc

    async def mark_pushed(self, repo_id: int) -> None:
        self.lookups.clear()
        async with self.write() as conn:
            await conn.execute(
                repositories.update().where(repositories.c.id == repo_id).values(pushed_at=utcnow())
            )

    async def delete_repo(self, repo_id: int) -> bool:
        self.lookups.clear()
        async with self.write() as conn:
            await conn.execute(collaborators.delete().where(collaborators.c.repo_id == repo_id))
            result = await conn.execute(repositories.delete().where(repositories.c.id == repo_id))
        return bool(result.rowcount)

    # Collaborators ---------------------------------------------------------
    async def permission_of(self, repo_id: int, user_id: int) -> str | None:
        key = ("permission", repo_id, user_id)
        cached = self.lookups.get(key)
        if cached is not MISSING:
            return cast(str | None, cached)
        query = sa.select(collaborators.c.permission).where(
            collaborators.c.repo_id == repo_id, collaborators.c.user_id == user_id
        )
        async with self.read() as conn:
            permission: str | None = (await conn.execute(query)).scalar_one_or_none()
        self.lookups.put(key, permission)
        return permission

    async def set_collaborator(self, repo_id: int, user_id: int, permission: str) -> bool:
        """Insert or update; True when the user was not a collaborator before."""
        self.lookups.clear()
        async with self.write() as conn:
            existing = (
                await conn.execute(
                    sa.select(collaborators.c.permission).where(
                        collaborators.c.repo_id == repo_id, collaborators.c.user_id == user_id
                    )
                )
            ).first()
            if existing is None:
                await conn.execute(
                    collaborators.insert().values(
                        repo_id=repo_id,
                        user_id=user_id,
                        permission=permission,
                        created_at=utcnow(),
                    )
                )
                return True
            await conn.execute(
                collaborators.update()
                .where(collaborators.c.repo_id == repo_id, collaborators.c.user_id == user_id)
                .values(permission=permission)
            )
            return False

    async def remove_collaborator(self, repo_id: int, user_id: int) -> bool:
        self.lookups.clear()
        async with self.write() as conn:
            result = await conn.execute(
                collaborators.delete().where(
                    collaborators.c.repo_id == repo_id, collaborators.c.user_id == user_id
                )
            )
        return bool(result.rowcount)

    async def list_collaborators(
        self, repo_id: int, *, offset: int = 0, limit: int = 30
    ) -> tuple[list[Collaborator], int]:
        query = (
            sa.select(users, collaborators.c.permission)
            .join(collaborators, collaborators.c.user_id == users.c.id)
            .where(collaborators.c.repo_id == repo_id)
            .order_by(users.c.login_lower)
            .offset(offset)
            .limit(limit)
        )
        count = sa.select(sa.func.count()).where(collaborators.c.repo_id == repo_id)
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
            total = int((await conn.execute(count)).scalar_one())
        return [Collaborator(user_from_row(r), r._mapping["permission"]) for r in rows], total
