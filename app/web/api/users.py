"""Users: GET /user, GET /users (since paging), GET /users/{username}; user JSON builders."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from app.auth.access import Access
from app.errors import Forbidden
from app.schemas.users import SimpleUserOut, UserOut, UsersQuery
from app.services.context import AppContext
from app.services.users import get_user
from app.store.records import User
from app.web.api.common import (
    PREFIX,
    api_url,
    base_url,
    ctx_of,
    iso,
    json_response,
    parse_query,
    principal_of,
    require_user,
)
from app.web.api.docs import doc

routes = web.RouteTableDef()
SCOPE_NAMES = {Access.READ: "read", Access.WRITE: "write", Access.ADMIN: "admin"}


def node_id(kind: str, number: int) -> str:
    """GitHub's legacy global node id: base64 of `<len>:<Type><id>`."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def require_scope(request: web.Request, need: Access) -> User:
    """An authenticated caller whose credential carries the scope `need` (403 otherwise)."""
    user = require_user(request)
    if need not in principal_of(request).scope_mask:
        raise Forbidden(f"This token needs the {SCOPE_NAMES.get(need, 'admin')} scope")
    return user


def simple_user(request: web.Request, login: str, user_id: int, site_admin: bool) -> dict[str, Any]:
    url = api_url(request, f"/users/{login}")
    return {
        "login": login,
        "id": user_id,
        "node_id": node_id("User", user_id),
        "avatar_url": "",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{base_url(request)}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": "User",
        "site_admin": site_admin,
    }


def simple_user_of(request: web.Request, user: User) -> dict[str, Any]:
    return simple_user(request, user.login, user.id, user.is_admin)


async def full_user(request: web.Request, user: User) -> dict[str, Any]:
    """GitHub's user object; the e-mail only for the user themself and site admins."""
    ctx = ctx_of(request)
    viewer = principal_of(request).user
    show_email = viewer is not None and (viewer.id == user.id or viewer.is_admin)
    _, public_repos = await ctx.store.list_repos(None, owner_id=user.id, limit=1)
    data = simple_user_of(request, user)
    data.update(
        {
            "name": None,
            "company": None,
            "blog": "",
            "location": None,
            "email": user.email if show_email else None,
            "hireable": None,
            "bio": None,
            "public_repos": public_repos,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": iso(user.created_at),
            "updated_at": iso(user.updated_at),
        }
    )
    return UserOut.model_validate(data).model_dump(mode="json")


async def user_by_name(ctx: AppContext, login: str) -> User:
    return await get_user(ctx, login)


@routes.get(f"{PREFIX}/user")
@doc(summary="The authenticated user", response=UserOut, tags=["users"], errors=(401,))
async def get_authenticated_user(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response(await full_user(request, user))


@routes.get(f"{PREFIX}/users")
@doc(
    summary="List users (GitHub's `since` paging: the Link header names the next page)",
    query=UsersQuery,
    response=SimpleUserOut,
    response_is_list=True,
    tags=["users"],
    errors=(422,),
)
async def list_users(request: web.Request) -> web.Response:
    query = parse_query(request, UsersQuery)
    per_page = min(query.per_page, 100)
    found = await ctx_of(request).store.list_users(since=query.since, limit=per_page + 1)
    page, more = found[:per_page], len(found) > per_page
    headers = {}
    if more and page:
        next_query = {"since": str(page[-1].id), "per_page": str(per_page)}
        next_url = base_url(request) + str(request.rel_url.with_query(next_query))
        headers["Link"] = f'<{next_url}>; rel="next"'
    items = [simple_user_of(request, user) for user in page]
    return json_response(items, headers=headers)


@routes.get(f"{PREFIX}/users/{{username}}")
@doc(summary="A user", response=UserOut, tags=["users"], errors=(404,))
async def get_one_user(request: web.Request) -> web.Response:
    user = await user_by_name(ctx_of(request), request.match_info["username"])
    return json_response(await full_user(request, user))
