"""One published plan per day, enforced by the database.

Two dispatchers publishing two versions of a day at the same moment could both pass the
service's check; a partial unique index on ``plans(day)`` over published rows makes the second
commit fail (the service answers 409).

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_plans_one_published_per_day"
WHERE = sa.text("status = 'published'")


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        INDEX,
        "plans",
        ["day"],
        unique=True,
        sqlite_where=WHERE,
        postgresql_where=WHERE,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(INDEX, table_name="plans")
