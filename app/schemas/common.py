"""Small types shared by the schema modules: timestamps, pages, the error body."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.schemas.base import QueryModel

# GitHub's timestamp format, always UTC: 2024-01-31T12:00:00Z
Timestamp = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
        examples=["2024-01-31T12:00:00Z"],
    ),
]

# Largest value a 64-bit signed database column holds: bigger ids are simply not found.
MAX_ID = 2**63 - 1


class PageQuery(QueryModel):
    """GitHub's page-based pagination (the Link header gives prev, next, last, first)."""

    per_page: int = Field(30, ge=1, description="Items per page; at most 100 (larger is clamped)")
    page: int = Field(1, ge=1, le=1_000_000, description="Page number, from 1")


class ErrorOut(BaseModel):
    """Every error answer on /api: GitHub's shape plus the request id."""

    message: str
    errors: list[dict[str, Any]] | None = None
    documentation_url: str | None = None
    request_id: str | None = None
