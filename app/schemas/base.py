"""Base classes shared by every schema module."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class BodyModel(BaseModel):
    """A request body: unknown fields ignored (PyGithub sends extras such as `has_issues`);
    known fields are declared with strict types where a wrong JSON type must be a 422."""

    model_config = ConfigDict(extra="ignore", str_max_length=10_000)


class QueryModel(BaseModel):
    """Query parameters: strings from the URL, coerced to the declared types."""

    model_config = ConfigDict(extra="ignore", str_max_length=1_000)


class OutModel(BaseModel):
    """A response body. Extra keys are allowed in the JSON Schema (GitHub adds fields)."""

    model_config = ConfigDict(extra="allow")
