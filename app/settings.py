"""Settings: read once (environment `APP_*`, optional `.env`, CLI flags win) and passed down.

No other module reads `os.environ` for configuration; the git layer builds its own
allow-listed environment for child processes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(value: str) -> tuple[int, int]:
    """`"5000/hour"` -> `(5000, 3600)`: requests allowed per window of seconds."""
    match = _RATE.match(value)
    if not match:
        raise ValueError(f"rate must look like '5000/hour', got {value!r}")
    return int(match.group(1)), _PERIODS[match.group(2)]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the server can be told. Defaults make a working single instance."""

    model_config = SettingsConfigDict(
        env_prefix="APP_", env_file=".env", extra="ignore", validate_default=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    # Prefix of every Redis key and channel (rate limits, event hub): several clusters or
    # test runs can share one Redis server without seeing each other's state.
    redis_prefix: str = Field("githost:", pattern=r"^[A-Za-z0-9:._-]{0,64}$")
    secret_key: str | None = Field(None, min_length=32)
    base_url: str | None = None

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    rate_limit: str = "5000/hour"
    rate_limit_anonymous: str = "600/hour"
    auth_failure_limit: str = "10/minute"

    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    git_bin: str = "git"
    git_max_push_bytes: int = Field(2 * 1024**3, ge=1024)
    git_max_concurrency: int = Field(32, ge=1)
    git_max_per_repo: int = Field(16, ge=1)
    git_queue_size: int = Field(64, ge=0)
    git_queue_timeout: float = Field(10.0, ge=0)

    api_max_body_bytes: int = Field(1024 * 1024, ge=1024)
    api_max_json_depth: int = Field(32, ge=2)
    reader_pool_size: int = Field(64, ge=1)
    # Seconds a repository/permission lookup may be served from memory (0: never).
    # This process's writes and other instances' access notices clear it at once.
    repo_cache_seconds: float = Field(2.0, ge=0, le=60)
    reader_idle_seconds: float = Field(60.0, gt=0)
    # REST reads: cat-file readers per repository; false = one git process per request
    # (the naive design, kept for the benchmark); GitHub's limits for recursive trees.
    reader_per_repo: int = Field(8, ge=1)
    git_reader_pool: bool = True
    reader_cache_mb: int = Field(64, ge=0)  # immutable objects and walks by id; 0 = off
    api_tree_max_entries: int = Field(100_000, ge=1)
    api_tree_max_bytes: int = Field(7 * 1024 * 1024, ge=1024)

    jwt_ttl_seconds: int = Field(3600, ge=60)
    ws_max_message_bytes: int = Field(64 * 1024, ge=1024)
    ws_queue_size: int = Field(256, ge=1)
    ws_heartbeat_seconds: float = Field(30.0, gt=0)
    # Client side: the credential `python -m app events watch` sends when --token is not
    # given (APP_TOKEN). The server itself never reads it.
    token: str | None = None
    shutdown_timeout: float = Field(30.0, ge=0)

    # Hardening and operations (SECURITY.md): client limits, deadlines, admission, metrics.
    git_max_per_client: int = Field(8, ge=1)
    git_idle_timeout: float = Field(120.0, gt=0)
    keepalive_timeout: float = Field(30.0, gt=0)
    body_read_timeout: float = Field(30.0, gt=0)
    max_header_line_bytes: int = Field(8190, ge=1024, le=65536)
    max_header_field_bytes: int = Field(8190, ge=1024, le=65536)
    max_headers: int = Field(100, ge=16, le=1000)
    metrics_token: str | None = None

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
                raise ValueError(f"CORS origin must be scheme://host[:port], got {origin!r}")
        return value

    @field_validator("rate_limit", "rate_limit_anonymous", "auth_failure_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    # Derived locations: all state lives under data_dir unless a URL says otherwise.
    @property
    def repositories_dir(self) -> Path:
        return self.data_dir / "repositories"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'app.db').resolve()}"

    def load_secret_key(self) -> str:
        """The JWT signing key: from settings, else generated once and kept in data_dir.

        Several instances must share `APP_SECRET_KEY` (or one data dir).
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        try:
            return _read_key(path)
        except FileNotFoundError:
            pass
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A private temporary file per process (never readable by others, not even
        # briefly), then link(): it fails if another process won the race: read theirs.
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            path.hardlink_to(tmp)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return _read_key(path)


def _read_key(path: Path) -> str:
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path} holds no usable key (fewer than 32 characters)")
    return key
