"""Metadata: SQLAlchemy 2 (async Core) on SQLite (default) or PostgreSQL, Alembic migrations."""

from app.store.store import Store

__all__ = ["Store"]
