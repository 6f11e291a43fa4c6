"""Route documentation for /api/v1/openapi.json, attached to handlers where they are written.

    @routes.get("/api/v1/repos/{owner}/{repo}")
    @doc(summary="Get a repository", response=RepoOut, tags=["repos"])
    async def get_repo(request): ...

The OpenAPI builder (app/web/openapi.py) walks the router, reads `ApiDoc` from each
handler and turns the pydantic models into JSON Schema. A route without `doc` is still
listed, with generic responses.

`extra` keys the builder understands:
    "response_or_list": True   the 2xx body is `response` or an array of it (contents)
    "responses": {status: {...}}  OpenAPI response objects merged over the generated ones
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

H = TypeVar("H", bound=Callable[..., Any])
ATTRIBUTE = "__api_doc__"


@dataclass(frozen=True)
class ApiDoc:
    summary: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_is_list: bool = False
    status: int = 200
    tags: Sequence[str] = ()
    errors: Sequence[int] = (401, 404, 422)
    raw_content_types: Sequence[str] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def doc(
    *,
    summary: str,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    response_is_list: bool = False,
    status: int = 200,
    tags: Sequence[str] = (),
    errors: Sequence[int] = (401, 404, 422),
    raw_content_types: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> Callable[[H], H]:
    """Attach an ApiDoc to a handler (put it under the route decorator)."""

    def attach(handler: H) -> H:
        setattr(
            handler,
            ATTRIBUTE,
            ApiDoc(
                summary,
                query,
                body,
                response,
                response_is_list,
                status,
                tuple(tags),
                tuple(errors),
                tuple(raw_content_types),
                dict(extra or {}),
            ),
        )
        return handler

    return attach


def doc_of(handler: Any) -> ApiDoc | None:
    return getattr(handler, ATTRIBUTE, None)
