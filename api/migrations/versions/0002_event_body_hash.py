"""Stop events and positions keep a hash of their body (a reused idempotency key is refused).

Revision ID: 0002_event_body_hash
Revises: 0004
Create Date: 2026-12-01 15:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_event_body_hash"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    for table in ("stop_events", "positions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("body_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    for table in ("positions", "stop_events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("body_sha256")
