"""Site administration: POST /admin/users (site admins only)."""

from __future__ import annotations

from aiohttp import web

from app.auth.access import Access
from app.errors import Forbidden
from app.schemas.users import AdminUserCreate, UserOut
from app.services.users import create_user
from app.web.api.common import PREFIX, ctx_of, json_response, parse_body
from app.web.api.docs import doc
from app.web.api.users import full_user, require_scope

routes = web.RouteTableDef()


@routes.post(f"{PREFIX}/admin/users")
@doc(
    summary="Create a user (site admins only; without a password the user signs in by token)",
    body=AdminUserCreate,
    response=UserOut,
    status=201,
    tags=["admin"],
    errors=(400, 401, 403, 422),
)
async def admin_create_user(request: web.Request) -> web.Response:
    admin = require_scope(request, Access.ADMIN)
    if not admin.is_admin:
        raise Forbidden("Must be a site administrator")
    body = await parse_body(request, AdminUserCreate)
    user = await create_user(
        ctx_of(request), body.login, password=body.password, email=body.email, is_admin=body.admin
    )
    return json_response(await full_user(request, user), status=201)
