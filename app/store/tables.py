"""The schema, as SQLAlchemy Core tables. Alembic migrations create exactly this."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger ids that are still SQLite's rowid alias (autoincrement works there too).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("login", sa.String(39), nullable=False),
    sa.Column("login_lower", sa.String(39), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("token_last_eight", sa.String(8), nullable=False),
    sa.Column("scopes", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_tokens_user_id", "user_id"),
)

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("owner_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("name_lower", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("private", sa.Boolean, nullable=False, default=False),
    sa.Column("default_branch", sa.String(255), nullable=False, default="main"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("owner_id", "name_lower", name="uq_repositories_owner_name"),
)

collaborators = sa.Table(
    "collaborators",
    metadata,
    sa.Column(
        "repo_id", BigId, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("permission", sa.String(10), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_collaborators_user_id", "user_id"),
)

# Events outlive their repository (repository.deleted must still replay), so no FK.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("repo_id", BigId, nullable=False),
    sa.Column("repo_name", sa.String(140), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(39), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_events_repo_id_id", "repo_id", "id"),
)
