"""A job's close outcome records a result reported after the close (why the dispatcher must look).

Revision ID: 0006
Revises: 0002_event_body_hash
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db

revision: str = "0006"
down_revision: str | None = "0002_event_body_hash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("job_outcomes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("late_result", sa.String(length=30), nullable=True))
        batch_op.add_column(
            sa.Column("revised_at", api.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("job_outcomes", schema=None) as batch_op:
        batch_op.drop_column("revised_at")
        batch_op.drop_column("late_result")
