"""Day close, carry-over rules, cash reconciliation and authorised handovers.

Revision ID: 0004
Revises: 0005
Create Date: 2026-12-01 15:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROOF_COLUMNS = (
    ("received_by", 20),
    ("authorised_name", 200),
    ("authorised_relation", 100),
    ("authorised_id_digits", 10),
    ("authorisation_photo_sha256", 64),
)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "day_closes",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("closed_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_day_closes_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["users.id"], name=op.f("fk_day_closes_closed_by_users")
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_day_closes")),
    )
    op.create_table(
        "job_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("job_id", sa.String(length=100), nullable=False),
        sa.Column("depot_id", sa.String(length=100), nullable=True),
        sa.Column("courier_id", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("fail_reason", sa.String(length=50), nullable=True),
        sa.Column("first_requested_at", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("carried_to", sa.Date(), nullable=True),
        sa.Column("released_at", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("job", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_outcomes")),
        sa.UniqueConstraint("day", "job_id", name="uq_job_outcomes_day_job_id"),
    )
    with op.batch_alter_table("job_outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_outcomes_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_outcomes_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_job_outcomes_carried_to"), ["carried_to"], unique=False
        )
    op.create_table(
        "carry_rules",
        sa.Column("depot_id", sa.String(length=100), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["depot_id"], ["depots.depot_id"], name=op.f("fk_carry_rules_depot_id_depots")
        ),
        sa.PrimaryKeyConstraint("depot_id", name=op.f("pk_carry_rules")),
    )
    op.create_table(
        "cash_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("courier_id", sa.String(length=100), nullable=False),
        sa.Column("depot_id", sa.String(length=100), nullable=True),
        sa.Column("issued_vnd", sa.BigInteger(), nullable=True),
        sa.Column("returned_vnd", sa.BigInteger(), nullable=True),
        sa.Column("paid_vnd", sa.BigInteger(), nullable=True),
        sa.Column("signed_off_at", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed_off_by", sa.Integer(), nullable=True),
        sa.Column("sign_off_note", sa.String(length=1000), nullable=False),
        sa.Column("updated_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["signed_off_by"], ["users.id"], name=op.f("fk_cash_days_signed_off_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_days")),
        sa.UniqueConstraint("day", "courier_id", name="uq_cash_days_day_courier_id"),
    )
    with op.batch_alter_table("cash_days", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cash_days_day"), ["day"], unique=False)
    with op.batch_alter_table("proofs", schema=None) as batch_op:
        for name, length in _PROOF_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("proofs", schema=None) as batch_op:
        for name, _ in reversed(_PROOF_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("cash_days", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cash_days_day"))
    op.drop_table("cash_days")
    op.drop_table("carry_rules")
    with op.batch_alter_table("job_outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_outcomes_carried_to"))
        batch_op.drop_index(batch_op.f("ix_job_outcomes_job_id"))
        batch_op.drop_index(batch_op.f("ix_job_outcomes_day"))
    op.drop_table("job_outcomes")
    op.drop_table("day_closes")
