"""Repositories: list (caller's, a user's), create, get, update (rename, visibility,
description, default branch), delete. Repository JSON in GitHub's shape."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from app.auth.access import Access
from app.schemas.repos import OwnerReposQuery, RepoCreate, RepoOut, RepoUpdate, UserReposQuery
from app.services.repo_settings import create_repository, repo_size_kb, roles, update_repository
from app.services.repos import access_to, delete_repo, find_repo
from app.services.users import get_user
from app.store.records import Repo, User
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
    parse_query,
    principal_of,
    require_user,
)
from app.web.api.docs import doc
from app.web.api.users import node_id, require_scope, simple_user

routes = web.RouteTableDef()
REPO_PATH = f"{PREFIX}/repos/{{owner}}/{{repo}}"


def repo_json(
    request: web.Request, repo: Repo, granted: Access, owner_admin: bool, size: int
) -> dict[str, Any]:
    url = api_url(request, f"/repos/{repo.owner}/{repo.name}")
    html = f"{base_url(request)}/{repo.owner}/{repo.name}"
    data: dict[str, Any] = {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "visibility": "private" if repo.private else "public",
        "owner": simple_user(request, repo.owner, repo.owner_id, owner_admin),
        "html_url": html,
        "description": repo.description or None,
        "fork": False,
        "url": url,
        "clone_url": f"{html}.git",
        "git_url": None,
        "ssh_url": None,
        "svn_url": None,
        "mirror_url": None,
        "homepage": None,
        "default_branch": repo.default_branch,
        "size": size,
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.updated_at),
        "pushed_at": iso(repo.pushed_at),
        "permissions": roles(granted),
        "archived": False,
        "disabled": False,
        "is_template": False,
        "has_issues": False,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": False,
        "allow_forking": False,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "open_issues_count": 0,
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "language": None,
        "license": None,
        "topics": [],
        "archive_url": f"{url}/{{archive_format}}{{/ref}}",
        "branches_url": f"{url}/branches{{/branch}}",
        "collaborators_url": f"{url}/collaborators{{/collaborator}}",
        "commits_url": f"{url}/commits{{/sha}}",
        "compare_url": f"{url}/compare/{{base}}...{{head}}",
        "contents_url": f"{url}/contents/{{+path}}",
        "events_url": f"{url}/events",
        "tags_url": f"{url}/tags",
        "trees_url": f"{url}/git/trees{{/sha}}",
    }
    return data


async def render_repo(request: web.Request, repo: Repo, granted: Access | None = None) -> Any:
    """One repository for the caller (size from disk, permissions for this caller)."""
    ctx = ctx_of(request)
    if granted is None:
        granted = await access_to(ctx, principal_of(request), repo)
    owner = await ctx.store.user_by_id(repo.owner_id)
    size = await repo_size_kb(ctx, repo)
    data = repo_json(request, repo, granted, bool(owner and owner.is_admin), size)
    return RepoOut.model_validate(data).model_dump(mode="json")


async def render_repos(request: web.Request, repos: list[Repo]) -> list[Any]:
    return list(await asyncio.gather(*(render_repo(request, repo) for repo in repos)))


@routes.get(f"{PREFIX}/user/repos")
@doc(
    summary="Repositories the authenticated user owns or collaborates on",
    query=UserReposQuery,
    response=RepoOut,
    response_is_list=True,
    tags=["repos"],
    errors=(401, 422),
)
async def list_own_repos(request: web.Request) -> web.Response:
    user = require_user(request)
    query = parse_query(request, UserReposQuery)
    page = parse_page(request)
    private = _private_filter(query)
    if private == "none":
        return paged_response(request, [], page, 0)
    affiliation = _affiliation(query)
    kwargs: dict[str, Any] = {"member_id": user.id}
    if affiliation == {"owner"}:
        kwargs = {"owner_id": user.id}
    elif affiliation == {"collaborator"}:
        kwargs["exclude_owner_id"] = user.id
    repos, total = await ctx_of(request).store.list_repos(
        user,
        offset=page.offset,
        limit=page.per_page,
        private=private if isinstance(private, bool) else None,
        order=query.sort,
        descending=_descending(query.sort, query.direction),
        **kwargs,
    )
    return paged_response(request, await render_repos(request, repos), page, total)


def _private_filter(query: UserReposQuery) -> bool | str | None:
    """type= and visibility= together: True/False/None, or "none" when they contradict."""
    wanted = {query.type, query.visibility} & {"public", "private"}
    if len(wanted) == 2:
        return "none"
    return (wanted.pop() == "private") if wanted else None


def _affiliation(query: UserReposQuery) -> set[str]:
    if query.affiliation:
        given = {part.strip() for part in query.affiliation.split(",") if part.strip()}
        chosen = given & {"owner", "collaborator"}
        return chosen or {"owner", "collaborator"}
    if query.type == "owner":
        return {"owner"}
    if query.type == "member":
        return {"collaborator"}
    return {"owner", "collaborator"}


def _descending(sort: str, direction: str | None) -> bool:
    if direction is None:
        return sort != "full_name"
    return direction == "desc"


@routes.get(f"{PREFIX}/users/{{username}}/repos")
@doc(
    summary="A user's repositories, as far as the caller may see them",
    query=OwnerReposQuery,
    response=RepoOut,
    response_is_list=True,
    tags=["repos"],
    errors=(404, 422),
)
async def list_user_repos(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    owner = await get_user(ctx, request.match_info["username"])
    query = parse_query(request, OwnerReposQuery)
    page = parse_page(request)
    kwargs: dict[str, Any] = {"owner_id": owner.id}
    if query.type == "member":
        kwargs = {"member_id": owner.id, "exclude_owner_id": owner.id}
    elif query.type == "all":
        kwargs = {"member_id": owner.id}
    repos, total = await ctx.store.list_repos(
        principal_of(request).user,
        offset=page.offset,
        limit=page.per_page,
        order=query.sort,
        descending=_descending(query.sort, query.direction),
        **kwargs,
    )
    return paged_response(request, await render_repos(request, repos), page, total)


@routes.post(f"{PREFIX}/user/repos")
@doc(
    summary="Create a repository for the authenticated user (auto_init adds a README commit)",
    body=RepoCreate,
    response=RepoOut,
    status=201,
    tags=["repos"],
    errors=(400, 401, 403, 422),
)
async def create_own_repo(request: web.Request) -> web.Response:
    user: User = require_scope(request, Access.WRITE)
    body = await parse_body(request, RepoCreate)
    private = body.private if body.private is not None else body.visibility == "private"
    repo = await create_repository(
        ctx_of(request),
        user,
        body.name,
        description=body.description or "",
        private=private,
        default_branch=body.default_branch or "main",
        auto_init=body.auto_init,
    )
    return json_response(await render_repo(request, repo), status=201)


@routes.get(REPO_PATH)
@doc(summary="A repository", response=RepoOut, tags=["repos"], errors=(404,))
async def get_repo(request: web.Request) -> web.Response:
    repo, granted = await find_repo(ctx_of(request), principal_of(request), *_names(request))
    return json_response(await render_repo(request, repo, granted))


@routes.patch(REPO_PATH)
@doc(
    summary="Update a repository: name (renames), description, private/visibility, default_branch",
    body=RepoUpdate,
    response=RepoOut,
    tags=["repos"],
    errors=(400, 401, 403, 404, 422),
)
async def update_repo(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    repo, granted = await find_repo(ctx, principal_of(request), *_names(request), Access.ADMIN)
    body = await parse_body(request, RepoUpdate)
    private = body.private
    if private is None and body.visibility is not None:
        private = body.visibility == "private"
    updated = await update_repository(
        ctx,
        repo,
        name=body.name,
        description=body.description,
        private=private,
        default_branch=body.default_branch,
    )
    return json_response(await render_repo(request, updated, granted))


@routes.delete(REPO_PATH)
@doc(summary="Delete a repository", status=204, tags=["repos"], errors=(401, 403, 404))
async def remove_repo(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    principal = principal_of(request)
    repo, _ = await find_repo(ctx, principal, *_names(request), Access.ADMIN)
    await delete_repo(ctx, repo, actor=principal.user.login if principal.user else None)
    return web.Response(status=204)


def _names(request: web.Request) -> tuple[str, str]:
    return request.match_info["owner"], request.match_info["repo"]
