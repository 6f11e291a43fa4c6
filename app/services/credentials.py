"""A short-lived cache of verified passwords.

git sends Basic credentials on every request of a clone; argon2 costs ~50 ms of CPU
each time. Remembering a successful check (by a keyed hash, never the password) for
a minute keeps fetches fast without weakening failures, which are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time


class CredentialCache:
    def __init__(self, ttl: float = 60.0, max_entries: int = 10_000):
        self._key = os.urandom(32)
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[bytes, tuple[int, str | None, float]] = {}

    def _digest(self, login: str, password: str) -> bytes:
        message = f"{login.lower()}\x00{password}".encode("utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def get(self, login: str, password: str, password_hash: str | None) -> int | None:
        """The user id remembered for these credentials, if the stored hash is unchanged."""
        entry = self._entries.get(self._digest(login, password))
        if entry is None:
            return None
        user_id, stored_hash, expires = entry
        if expires < time.monotonic() or stored_hash != password_hash:
            return None
        return user_id

    def put(self, login: str, password: str, user_id: int, password_hash: str | None) -> None:
        if len(self._entries) >= self._max:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[2] > now}
            if len(self._entries) >= self._max:
                self._entries.clear()
        expires = time.monotonic() + self._ttl
        self._entries[self._digest(login, password)] = (user_id, password_hash, expires)
