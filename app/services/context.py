"""What every service needs, built once by the app factory (or the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.events.hub import EventHub
from app.git.process import GitConfig
from app.git.reader import ReaderPool
from app.git.repos import RepoStorage
from app.services.credentials import CredentialCache
from app.settings import Settings
from app.store import Store


@dataclass
class AppContext:
    settings: Settings
    store: Store
    storage: RepoStorage
    git: GitConfig
    hub: EventHub
    secret_key: str
    credentials: CredentialCache = field(default_factory=lambda: CredentialCache())
    # Pooled `cat-file` readers: set by the app's readers cleanup_ctx (None in the CLI).
    readers: ReaderPool | None = None
