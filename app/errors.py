"""One exception family for everything a client can cause.

    AppError                      status  message
    ├── BadRequest                400     malformed body or query
    ├── Unauthorized              401     no or bad credentials
    ├── Forbidden                 403     known caller, not allowed
    ├── NotFound                  404     missing or not visible
    ├── PayloadTooLarge           413
    ├── Invalid                   422     validation failed, `errors` per field
    │   └── Conflict              422     name taken (GitHub answers 422 too)
    ├── RateLimited               429     with retry_after seconds
    └── Unavailable               503     overloaded, with retry_after seconds

The web layer's error middleware renders these; services and the git layer raise them.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 500
    default_message = "internal error"

    def __init__(self, message: str | None = None, *, errors: list[dict[str, Any]] | None = None):
        self.message = message or self.default_message
        self.errors = errors
        super().__init__(self.message)


class BadRequest(AppError):
    status = 400
    default_message = "bad request"


class Unauthorized(AppError):
    status = 401
    default_message = "Requires authentication"


class Forbidden(AppError):
    status = 403
    default_message = "forbidden"


class NotFound(AppError):
    status = 404
    default_message = "Not Found"


class PayloadTooLarge(AppError):
    status = 413
    default_message = "request body too large"


class Invalid(AppError):
    status = 422
    default_message = "Validation Failed"

    @classmethod
    def field(cls, resource: str, field: str, code: str = "invalid", message: str = "") -> Invalid:
        entry: dict[str, Any] = {"resource": resource, "field": field, "code": code}
        if message:
            entry["message"] = message
        return cls("Validation Failed", errors=[entry])


class Conflict(Invalid):
    """GitHub reports a taken name as 422 with code `already_exists`."""

    def __init__(self, resource: str, field: str, message: str | None = None):
        super().__init__(
            "Validation Failed",
            errors=[
                {
                    "resource": resource,
                    "field": field,
                    "code": "already_exists",
                    "message": message or f"{field} already exists",
                }
            ],
        )


class RateLimited(AppError):
    status = 429
    default_message = "API rate limit exceeded"

    def __init__(self, message: str | None = None, *, retry_after: int = 60):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class Unavailable(AppError):
    status = 503
    default_message = "server busy, try again later"

    def __init__(self, message: str | None = None, *, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
