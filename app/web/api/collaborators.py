"""Collaborators: list, check (204/404), add or change (PUT), remove, permission of a user."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.auth.access import Access
from app.errors import NotFound
from app.schemas.repos import CollaboratorPut, InvitationOut, PermissionOut
from app.schemas.users import CollaboratorOut
from app.services import collaborators as service
from app.services.repo_settings import roles
from app.services.repos import find_repo
from app.store.records import Repo
from app.web.api.common import (
    PREFIX,
    api_url,
    base_url,
    ctx_of,
    iso,
    json_response,
    paged_response,
    parse_body,
    parse_page,
    principal_of,
)
from app.web.api.docs import doc
from app.web.api.repos import render_repo
from app.web.api.users import node_id, simple_user, simple_user_of

routes = web.RouteTableDef()
BASE = f"{PREFIX}/repos/{{owner}}/{{repo}}/collaborators"
ONE = f"{BASE}/{{username}}"
ROLE_ACCESS = {
    "read": Access.READ,
    "write": Access.READ | Access.WRITE,
    "admin": Access.READ | Access.WRITE | Access.ADMIN,
    "none": Access.NONE,
}


def _is_self(request: web.Request) -> bool:
    user = principal_of(request).user
    return user is not None and user.login.lower() == request.match_info["username"].lower()


async def _repo(request: web.Request, need: Access) -> Repo:
    ctx, principal = ctx_of(request), principal_of(request)
    names = request.match_info["owner"], request.match_info["repo"]
    repo, _ = await find_repo(ctx, principal, *names, need)
    return repo


def collaborator_json(
    request: web.Request, login: str, user_id: int, admin: bool, role: str
) -> Any:
    data = simple_user(request, login, user_id, admin)
    data["permissions"] = roles(ROLE_ACCESS[role])
    data["role_name"] = role
    return data


@routes.get(BASE)
@doc(
    summary="Collaborators of a repository (needs push access; the owner is not listed)",
    query=None,
    response=CollaboratorOut,
    response_is_list=True,
    tags=["collaborators"],
    errors=(401, 403, 404, 422),
)
async def list_collaborators(request: web.Request) -> web.Response:
    repo = await _repo(request, Access.WRITE)
    page = parse_page(request)
    found, total = await service.list_collaborators(
        ctx_of(request), repo, offset=page.offset, limit=page.per_page
    )
    items = [
        collaborator_json(request, c.user.login, c.user.id, c.user.is_admin, c.permission)
        for c in found
    ]
    return paged_response(request, items, page, total)


@routes.get(ONE)
@doc(
    summary="Is the user a collaborator? 204 yes, 404 no",
    status=204,
    tags=["collaborators"],
    errors=(401, 403, 404),
)
async def check_collaborator(request: web.Request) -> web.Response:
    repo = await _repo(request, Access.READ if _is_self(request) else Access.WRITE)
    if not await service.is_collaborator(ctx_of(request), repo, request.match_info["username"]):
        raise NotFound("Not Found")
    return web.Response(status=204)


@routes.put(ONE)
@doc(
    summary="Add a collaborator (201 with the invitation, accepted at once) or change "
    "their permission (204)",
    body=CollaboratorPut,
    response=InvitationOut,
    status=201,
    tags=["collaborators"],
    errors=(204, 400, 401, 403, 404, 422),
)
async def put_collaborator(request: web.Request) -> web.Response:
    repo = await _repo(request, Access.ADMIN)
    body = await parse_body(request, CollaboratorPut)
    ctx = ctx_of(request)
    user, created = await service.add_collaborator(
        ctx, repo, request.match_info["username"], body.permission
    )
    if not created:
        return web.Response(status=204)
    inviter = principal_of(request).user
    repo_url = api_url(request, f"/repos/{repo.owner}/{repo.name}")
    permission = service.ROLES[body.permission]
    invitation = {
        "id": user.id,
        "node_id": node_id("RepositoryInvitation", user.id),
        "repository": await render_repo(request, repo),
        "invitee": simple_user_of(request, user),
        "inviter": simple_user_of(request, inviter) if inviter else None,
        "permissions": permission,
        "created_at": iso(repo.updated_at),
        "expired": False,
        "url": f"{repo_url}/collaborators/{user.login}",
        "html_url": f"{base_url(request)}/{repo.owner}/{repo.name}",
    }
    data = InvitationOut.model_validate(invitation).model_dump(mode="json")
    return json_response(data, status=201)


@routes.delete(ONE)
@doc(
    summary="Remove a collaborator (admins, or the collaborator themself)",
    status=204,
    tags=["collaborators"],
    errors=(401, 403, 404),
)
async def delete_collaborator(request: web.Request) -> web.Response:
    repo = await _repo(request, Access.READ if _is_self(request) else Access.ADMIN)
    await service.remove_collaborator(ctx_of(request), repo, request.match_info["username"])
    return web.Response(status=204)


@routes.get(f"{ONE}/permission")
@doc(
    summary="A user's permission on the repository: admin, write, read or none",
    response=PermissionOut,
    tags=["collaborators"],
    errors=(401, 403, 404),
)
async def get_permission(request: web.Request) -> web.Response:
    repo = await _repo(request, Access.READ if _is_self(request) else Access.WRITE)
    user, permission = await service.permission_of(
        ctx_of(request), repo, request.match_info["username"]
    )
    role = permission if permission != "none" else "none"
    data = {
        "permission": permission,
        "role_name": role,
        "user": collaborator_json(request, user.login, user.id, user.is_admin, role),
    }
    return json_response(PermissionOut.model_validate(data).model_dump(mode="json"))
