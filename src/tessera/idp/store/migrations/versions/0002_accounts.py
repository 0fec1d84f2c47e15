"""accounts: roles and permissions, MFA, lockout, email uniqueness, client status, 64-bit
audit ids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 18:40:00

The space-separated ``users.roles`` column becomes ``roles`` + ``user_roles``; a role named
``admin`` keeps administering its tenant (it is given the tenant-admin permissions).
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_ADMIN = "admin:users admin:roles admin:clients admin:audit"


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_roles_name"),
    )
    op.create_index("ix_roles_tenant_id", "roles", ["tenant_id"])
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["role_id"], ["roles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "role_id"),
    )
    op.create_index("ix_user_roles_role_id", "user_roles", ["role_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "code_hash"),
    )
    op.add_column(
        "tenants",
        sa.Column("mfa_policy", sa.String(length=16), nullable=False, server_default="optional"),
    )
    op.add_column(
        "clients",
        sa.Column("status", sa.String(length=16), nullable=False, server_default="active"),
    )
    # Plain ALTER TABLE, never a batch "move and copy": rebuilding `users` on SQLite would
    # drop the table its rows are referenced from (refresh families, user roles).
    for column in (
        sa.Column("email_key", sa.String(length=320), nullable=True),
        sa.Column("locked_until", sa.BigInteger(), nullable=True),
        sa.Column("mfa_secret", sa.LargeBinary(), nullable=True),
        sa.Column("mfa_pending", sa.LargeBinary(), nullable=True),
        sa.Column("mfa_enabled_at", sa.BigInteger(), nullable=True),
        sa.Column("mfa_last_step", sa.BigInteger(), nullable=True),
    ):
        op.add_column("users", column)

    _move_roles_into_tables()
    if op.get_bind().dialect.name == "postgresql":
        # Audit ids were 32-bit: enough for weeks of grants, not for years of them.
        op.alter_column("audit_events", "id", type_=sa.BigInteger(), existing_type=sa.Integer())
        op.execute("ALTER SEQUENCE audit_events_id_seq AS bigint")

    op.drop_column("users", "roles")
    op.create_index("uq_users_email", "users", ["tenant_id", "email_key"], unique=True)


def _move_roles_into_tables() -> None:
    connection = op.get_bind()
    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("tenant_id", sa.String),
        sa.column("email", sa.String),
        sa.column("email_key", sa.String),
        sa.column("roles", sa.Text),
    )
    roles = sa.table(
        "roles",
        sa.column("id", sa.String),
        sa.column("tenant_id", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("permissions", sa.Text),
        sa.column("created_at", sa.BigInteger),
        sa.column("updated_at", sa.BigInteger),
    )
    user_roles = sa.table("user_roles", sa.column("user_id"), sa.column("role_id"))
    now = int(time.time())
    made: dict[tuple[str, str], str] = {}
    for user_id, tenant_id, email, names in connection.execute(
        sa.select(users.c.id, users.c.tenant_id, users.c.email, users.c.roles)
    ):
        if email:
            connection.execute(
                users.update()
                .where(users.c.id == user_id)
                .values(email_key=email.strip().casefold())
            )
        for name in dict.fromkeys((names or "").split()):
            role_id = made.get((tenant_id, name))
            if role_id is None:
                role_id = made[(tenant_id, name)] = str(uuid.uuid4())
                connection.execute(
                    roles.insert().values(
                        id=role_id,
                        tenant_id=tenant_id,
                        name=name,
                        description="",
                        permissions=TENANT_ADMIN if name == "admin" else "",
                        created_at=now,
                        updated_at=now,
                    )
                )
            connection.execute(user_roles.insert().values(user_id=user_id, role_id=role_id))


def downgrade() -> None:
    # Audit ids stay 64-bit: ids already past 2^31 could not shrink, and 0001 works with both.
    op.drop_index("uq_users_email", table_name="users")
    op.add_column("users", sa.Column("roles", sa.Text(), nullable=False, server_default=""))
    connection = op.get_bind()
    names: dict[str, list[str]] = {}
    for user_id, name in connection.execute(
        sa.text(
            "SELECT user_roles.user_id, roles.name FROM user_roles "
            "JOIN roles ON roles.id = user_roles.role_id"
        )
    ):
        names.setdefault(user_id, []).append(name)
    for user_id, role_names in names.items():
        connection.execute(
            sa.text("UPDATE users SET roles = :roles WHERE id = :id"),
            {"roles": " ".join(sorted(role_names)), "id": user_id},
        )
    for column in (
        "email_key",
        "locked_until",
        "mfa_secret",
        "mfa_pending",
        "mfa_enabled_at",
        "mfa_last_step",
    ):
        op.drop_column("users", column)
    op.drop_column("clients", "status")
    op.drop_column("tenants", "mfa_policy")
    op.drop_table("recovery_codes")
    op.drop_index("ix_user_roles_role_id", table_name="user_roles")
    op.drop_table("user_roles")
    op.drop_index("ix_roles_tenant_id", table_name="roles")
    op.drop_table("roles")
