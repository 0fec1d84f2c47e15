"""refresh families remember the provider session they began in (its logout revokes them)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 14:30:00

Expand only: a nullable column and its index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("refresh_families", sa.Column("session_id", sa.String(length=36), nullable=True))
    op.create_index("ix_refresh_families_session_id", "refresh_families", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_refresh_families_session_id", table_name="refresh_families")
    op.drop_column("refresh_families", "session_id")
