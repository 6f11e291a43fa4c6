"""Short-lived JWTs for the API: HS256 only, `exp` required."""

from __future__ import annotations

import time

import jwt

ALGORITHM = "HS256"


def issue(secret: str, user_id: int, ttl_seconds: int) -> tuple[str, int]:
    now = int(time.time())
    expires = now + ttl_seconds
    claims = {"sub": str(user_id), "iat": now, "exp": expires, "typ": "access"}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def verify(secret: str, token: str) -> int | None:
    """The user id of a valid token, else None (bad signature, expired, malformed)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "access":
        return None
    try:
        return int(claims["sub"])
    except (TypeError, ValueError):
        return None


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("ey")
