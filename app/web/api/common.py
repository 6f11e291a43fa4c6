"""What every API handler shares: parsing (pydantic), pagination, absolute URLs, rendering."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from app.auth.access import Principal
from app.errors import BadRequest, Unauthorized
from app.services.context import AppContext
from app.store.records import User
from app.web.git_ops import flushed
from app.web.keys import CTX, PRINCIPAL, SETTINGS
from app.web.stamping import prepare

PREFIX = "/api/v1"
Model = TypeVar("Model", bound=BaseModel)


class Body(BaseModel):
    """Request bodies: unknown fields ignored (PyGithub sends extras), known ones strict."""

    model_config = ConfigDict(extra="ignore", str_max_length=10_000)


class Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    per_page: int = Field(30, ge=1, le=100)
    page: int = Field(1, ge=1, le=1_000_000)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def ctx_of(request: web.Request) -> AppContext:
    return request.app[CTX]


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def require_user(request: web.Request) -> User:
    user = principal_of(request).user
    if user is None:
        raise Unauthorized("Requires authentication")
    return user


def parse_query(request: web.Request, model: type[Model]) -> Model:
    """Query parameters -> model (422 naming the field on a bad value)."""
    return model.model_validate(dict(request.query))


def parse_page(request: web.Request) -> Page:
    """per_page above 100 is clamped to 100, as GitHub does; other bad values are 422."""
    query = dict(request.query)
    raw = query.get("per_page")
    if raw is not None and raw.isdigit() and int(raw) > 100:
        query["per_page"] = "100"
    return Page.model_validate({k: v for k, v in query.items() if k in ("page", "per_page")})


async def parse_body(request: web.Request, model: type[Model]) -> Model:
    """JSON body -> model: 400 if not JSON (or too deep), 422 if a field is wrong."""
    raw = await request.read()
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise BadRequest("Problems parsing JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("Problems parsing JSON: expected an object")
    if _depth(data) > request.app[SETTINGS].api_max_json_depth:
        raise BadRequest("Problems parsing JSON: nested too deeply")
    return model.model_validate(data)


def _depth(value: Any, level: int = 1) -> int:
    if level > 1024:  # past any sane api_max_json_depth: stop walking
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def base_url(request: web.Request) -> str:
    """scheme://host:port of this request (X-Forwarded-* only from trusted proxies,
    applied by the proxy middleware that rewrites request.scheme/host)."""
    return f"{request.scheme}://{request.host}"


def api_url(request: web.Request, path: str) -> str:
    return f"{base_url(request)}{PREFIX}{path}"


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def link_header(request: web.Request, page: Page, total: int | None, has_next: bool = False) -> str:
    """GitHub's Link header: prev, next, last, first, each only where it applies.

    total=None means the total is unknown (history): then only prev/next/first appear.
    """

    def url_for(number: int) -> str:
        query = dict(request.query)
        query["page"] = str(number)
        query["per_page"] = str(page.per_page)
        return _absolute(request, query)

    links = []
    last = max(1, -(-total // page.per_page)) if total is not None else None
    if page.page > 1:
        links.append(f'<{url_for(page.page - 1)}>; rel="prev"')
    if (last is not None and page.page < last) or (last is None and has_next):
        links.append(f'<{url_for(page.page + 1)}>; rel="next"')
    if last is not None and page.page < last:
        links.append(f'<{url_for(last)}>; rel="last"')
    if page.page > 1:
        links.append(f'<{url_for(1)}>; rel="first"')
    return ", ".join(links)


def _absolute(request: web.Request, query: dict[str, str]) -> str:
    return base_url(request) + str(request.rel_url.with_query(query))


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def paged_response(
    request: web.Request, items: list[Any], page: Page, total: int | None, has_next: bool = False
) -> web.Response:
    headers = {}
    link = link_header(request, page, total, has_next)
    if link:
        headers["Link"] = link
    return json_response(items, headers=headers)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def stream_response(
    request: web.Request, response: web.StreamResponse, chunks: AsyncIterator[bytes]
) -> web.StreamResponse:
    """Send git output as it comes. The headers wait for the first chunk, so a git that
    fails before writing anything still gets an error status instead of a cut 200."""
    try:
        first = await anext(chunks, b"")
        await prepare(request, response)
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        await flushed(request, ctx_of(request).settings.git_idle_timeout)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    return response
