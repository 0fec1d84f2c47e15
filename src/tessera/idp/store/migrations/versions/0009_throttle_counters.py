"""the lockout's failure counters in the database, so that nodes without Redis count together

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 19:30:00

Expand only: a new table. A node of the previous version never reads or writes it (it counts in
its own memory), so it keeps serving while this runs and until it is replaced.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttle_counters",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("in_flight_at", sa.Float(), nullable=False),
        sa.Column("last_attempt_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_throttle_counters_expires_at", "throttle_counters", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_throttle_counters_expires_at", table_name="throttle_counters")
    op.drop_table("throttle_counters")
