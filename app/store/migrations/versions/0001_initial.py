"""Initial schema: users, tokens, repositories, collaborators, events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from app.store import tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ORDER = ("users", "tokens", "repositories", "collaborators", "events")


def upgrade() -> None:
    bind = op.get_bind()
    for name in _ORDER:
        tables.metadata.tables[name].create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for name in reversed(_ORDER):
        tables.metadata.tables[name].drop(bind)
