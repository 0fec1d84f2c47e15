"""authorization codes, and the URIs a client registers for the code flow and for logout

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 12:00:00

Expand only: a new table and new columns with defaults, so a node of the previous version keeps
serving while this runs (it neither reads nor writes them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("resource", sa.String(length=500), nullable=True),
        sa.Column("code_challenge", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=512), nullable=True),
        sa.Column("auth_time", sa.BigInteger(), nullable=False),
        sa.Column("amr", sa.String(length=100), nullable=False),
        sa.Column("acr", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_at", sa.BigInteger(), nullable=True),
        sa.Column("family_id", sa.String(length=36), nullable=True),
        sa.Column("access_jti", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_index("ix_authorization_codes_user_id", "authorization_codes", ["user_id"])
    op.create_index("ix_authorization_codes_expires_at", "authorization_codes", ["expires_at"])
    # Plain ALTER TABLE (see 0002): never a batch rebuild of a table others refer to.
    for column in (
        sa.Column("redirect_uris", sa.Text(), nullable=False, server_default=""),
        sa.Column("post_logout_redirect_uris", sa.Text(), nullable=False, server_default=""),
        sa.Column("backchannel_logout_uri", sa.String(length=2000), nullable=True),
    ):
        op.add_column("clients", column)


def downgrade() -> None:
    for column in ("backchannel_logout_uri", "post_logout_redirect_uris", "redirect_uris"):
        op.drop_column("clients", column)
    op.drop_index("ix_authorization_codes_expires_at", table_name="authorization_codes")
    op.drop_index("ix_authorization_codes_user_id", table_name="authorization_codes")
    op.drop_table("authorization_codes")
