"""the algorithm a client's ID tokens are signed with

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 12:10:00

Expand only: one column with a default (RS256, which every OpenID Connect client verifies).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "clients",
        sa.Column(
            "id_token_signed_response_alg",
            sa.String(length=16),
            nullable=False,
            server_default="RS256",
        ),
    )


def downgrade() -> None:
    op.drop_column("clients", "id_token_signed_response_alg")
