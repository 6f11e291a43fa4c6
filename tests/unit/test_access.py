"""The access matrix: visibility x who x operation, credential scopes, and the
401/404/403 answers of CONTRACT §3 (checked on `resolve` with a real SQLite store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.auth.access import (
    ALL,
    ANONYMOUS,
    Access,
    Principal,
    access_for,
    effective_access,
)
from app.errors import AppError, Forbidden, NotFound, Unauthorized
from app.services.bootstrap import open_context
from app.services.context import AppContext
from app.services.repos import resolve
from app.store.records import Repo, User
from tests.helpers import make_settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
R, W, A, N = Access.READ, Access.WRITE, Access.ADMIN, Access.NONE
RW, RWA = R | W, R | W | A


def _user(uid: int, login: str, *, admin: bool = False) -> User:
    return User(uid, login, None, admin, NOW, NOW)


OWNER = _user(1, "owner")
SITE_ADMIN = _user(2, "root", admin=True)
STRANGER = _user(3, "stranger")
COLLAB = _user(4, "collab")


def _repo(private: bool) -> Repo:
    return Repo(10, OWNER.id, OWNER.login, "r", "", private, "main", NOW, NOW, None)


# (who, collaborator permission) -> access on a public / a private repository
WHO = {
    "anonymous": (None, None),
    "stranger": (STRANGER, None),
    "read collaborator": (COLLAB, "read"),
    "write collaborator": (COLLAB, "write"),
    "admin collaborator": (COLLAB, "admin"),
    "owner": (OWNER, None),
    "site admin": (SITE_ADMIN, None),
}
EXPECTED = {
    #                      public, private
    "anonymous": (R, N),
    "stranger": (R, N),
    "read collaborator": (R, R),
    "write collaborator": (RW, RW),
    "admin collaborator": (RWA, RWA),
    "owner": (RWA, RWA),
    "site admin": (RWA, RWA),
}


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
@pytest.mark.parametrize("who", list(WHO))
def test_access_matrix(who: str, private: bool) -> None:
    user, permission = WHO[who]
    expected = EXPECTED[who][private]
    assert access_for(user, _repo(private), permission) == expected
    # With a password or a JWT (all scopes) nothing is narrowed.
    principal = Principal(user) if user else ANONYMOUS
    assert effective_access(principal, _repo(private), permission) == expected


def test_unknown_collaborator_permission_grants_nothing() -> None:
    assert access_for(COLLAB, _repo(True), "superuser") == N
    assert access_for(COLLAB, _repo(False), "") == R
    # A collaborator row never applies to nobody.
    assert access_for(None, _repo(True), "admin") == N


SCOPES = {
    frozenset({"read"}): R,
    frozenset({"write"}): RW,
    frozenset({"admin"}): RWA,
    frozenset({"read", "write"}): RW,
    frozenset({"read", "admin"}): RWA,
    frozenset({"read", "write", "admin"}): RWA,
    frozenset(): N,
    frozenset({"bogus"}): N,
}


@pytest.mark.parametrize("scopes", list(SCOPES), ids=lambda s: ",".join(sorted(s)) or "none")
@pytest.mark.parametrize("who", ["owner", "site admin", "write collaborator", "read collaborator"])
@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_token_scopes_narrow_access(scopes: frozenset[str], who: str, private: bool) -> None:
    user, permission = WHO[who]
    assert user is not None
    principal = Principal(user, scopes=scopes, token_id=1, method="token")
    expected = EXPECTED[who][private] & SCOPES[scopes]
    if not private:
        expected |= R  # public read is never taken away by a narrow token
    assert effective_access(principal, _repo(private), permission) == expected


def test_stranger_token_scopes_never_widen() -> None:
    principal = Principal(STRANGER, scopes=frozenset({"admin"}), token_id=1, method="token")
    assert effective_access(principal, _repo(True), None) == N
    assert effective_access(principal, _repo(False), None) == R


def test_scope_mask_and_flags() -> None:
    assert ANONYMOUS.scope_mask == ALL
    assert Principal(OWNER, scopes=frozenset({"read"})).scope_mask == R
    assert RW in RWA and R in RW and W not in R
    assert (RW & A) == N


# The answers: resolve() with a real store ------------------------------------------------


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[AppContext]:
    async with open_context(make_settings(tmp_path)) as context:
        yield context


async def _world(ctx: AppContext) -> dict[str, User]:
    from app.services.repos import create_repo
    from app.services.users import create_user

    users = {}
    for login, admin in (("owner", False), ("root", True), ("stranger", False)):
        users[login] = await create_user(ctx, login, password=None, is_admin=admin)
    for login in ("reader", "writer", "maintainer"):
        users[login] = await create_user(ctx, login, password=None)
    for private in (False, True):
        repo = await create_repo(ctx, users["owner"], "priv" if private else "pub", private=private)
        for login, permission in (("reader", "read"), ("writer", "write"), ("maintainer", "admin")):
            await ctx.store.set_collaborator(repo.id, users[login].id, permission)
    return users


NEED = {"read": R, "write": W | R, "admin": A | R}
# who -> expected status for (repo, need): 200 = granted
ANSWERS: dict[str | None, dict[tuple[str, str], int]] = {
    None: {
        ("pub", "read"): 200,
        ("pub", "write"): 401,
        ("pub", "admin"): 401,
        ("priv", "read"): 401,
        ("priv", "write"): 401,
        ("priv", "admin"): 401,
        ("missing", "read"): 401,
        ("missing", "write"): 401,
    },
    "stranger": {
        ("pub", "read"): 200,
        ("pub", "write"): 403,
        ("pub", "admin"): 403,
        ("priv", "read"): 404,
        ("priv", "write"): 404,
        ("priv", "admin"): 404,
        ("missing", "read"): 404,
        ("missing", "write"): 404,
    },
    "reader": {
        ("priv", "read"): 200,
        ("priv", "write"): 403,
        ("priv", "admin"): 403,
    },
    "writer": {
        ("priv", "read"): 200,
        ("priv", "write"): 200,
        ("priv", "admin"): 403,
    },
    "maintainer": {("priv", "admin"): 200},
    "owner": {("priv", "admin"): 200, ("pub", "admin"): 200},
    "root": {("priv", "admin"): 200, ("missing", "read"): 404},
}


async def _status(ctx: AppContext, principal: Principal, repo: str, need: str) -> int:
    try:
        await resolve(ctx, principal, "owner", repo, NEED[need])
    except AppError as exc:
        return exc.status
    return 200


async def test_resolve_answers(ctx: AppContext) -> None:
    users = await _world(ctx)
    for who, answers in ANSWERS.items():
        principal = ANONYMOUS if who is None else Principal(users[who])
        for (repo, need), expected in answers.items():
            got = await _status(ctx, principal, repo, need)
            assert got == expected, (who, repo, need, got)


async def test_resolve_with_read_token_refuses_push_with_403(ctx: AppContext) -> None:
    users = await _world(ctx)
    token = Principal(users["owner"], scopes=frozenset({"read"}), token_id=1, method="token")
    assert await _status(ctx, token, "priv", "read") == 200
    assert await _status(ctx, token, "priv", "write") == 403
    assert await _status(ctx, token, "pub", "write") == 403


async def test_resolve_is_case_insensitive_and_strips_git(ctx: AppContext) -> None:
    users = await _world(ctx)
    repo, granted = await resolve(ctx, Principal(users["owner"]), "OWNER", "Priv.git", R)
    assert (repo.owner, repo.name) == ("owner", "priv")
    assert granted == RWA


async def test_resolve_error_types(ctx: AppContext) -> None:
    users = await _world(ctx)
    with pytest.raises(Unauthorized):
        await resolve(ctx, ANONYMOUS, "owner", "priv", R)
    with pytest.raises(NotFound):
        await resolve(ctx, Principal(users["stranger"]), "owner", "priv", R)
    with pytest.raises(Forbidden):
        await resolve(ctx, Principal(users["reader"]), "owner", "priv", RW)
    # Invalid names are not found whoever asks (they cannot exist).
    for principal in (ANONYMOUS, Principal(users["root"])):
        with pytest.raises(NotFound):
            await resolve(ctx, principal, "owner", "../../etc", R)
