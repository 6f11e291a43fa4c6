"""Personal access tokens: 32 random bytes, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

# GitHub's prefix: secret scanners and scripts recognise it.
TOKEN_PREFIX = "ghp_"  # noqa: S105 (a prefix, not a secret)
SCOPES = ("read", "write", "admin")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and 30 < len(value) < 200


def parse_scopes(value: str | list[str]) -> list[str]:
    """`"read,write"` or a list -> validated list; ValueError names the bad scope."""
    items = value.split(",") if isinstance(value, str) else value
    scopes = [s.strip() for s in items if s.strip()]
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r} (choose from {', '.join(SCOPES)})")
    if not scopes:
        raise ValueError("at least one scope is needed")
    return scopes
