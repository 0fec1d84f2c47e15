"""clients may authenticate with private_key_jwt: their public JWK Set, and the assertions used

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 15:00:00

Expand only: a nullable column (a node of the previous version neither reads nor writes it, and
every client it knows keeps its secret or its public status) and a new table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("jwks", sa.Text(), nullable=True))
    op.create_table(
        "client_assertions",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.PrimaryKeyConstraint("client_id", "jti"),
    )
    op.create_index("ix_client_assertions_expires_at", "client_assertions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_client_assertions_expires_at", table_name="client_assertions")
    op.drop_table("client_assertions")
    op.drop_column("clients", "jwks")
