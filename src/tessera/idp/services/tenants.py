"""Tenants: isolated spaces of users, roles, clients and audit rows. A new tenant comes with an
``admin`` role holding the tenant-admin permissions, ready to be granted.

>>> check_tenant_id("acme-eu")
'acme-eu'
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import conflict, not_found, unprocessable
from ..store.models import Role, Tenant
from .audit import Context, record
from .rbac import SYSTEM_ADMIN, SYSTEM_TENANT, TENANT_ADMIN

MFA_POLICIES = ("optional", "required")
_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_tenant_id(tenant_id: str) -> str:
    """A tenant id: lowercase letters, digits and '-', 1-63 characters (a 422 otherwise)."""
    if not _TENANT_ID.fullmatch(tenant_id):
        raise unprocessable("a tenant id is 1-63 lowercase letters, digits or '-'")
    return tenant_id


def _check_policy(mfa_policy: str) -> str:
    if mfa_policy not in MFA_POLICIES:
        raise unprocessable(f"mfa_policy is one of {', '.join(MFA_POLICIES)}")
    return mfa_policy


def create_tenant(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    mfa_policy: str = "optional",
    context: Context | None = None,
    now: int | None = None,
) -> Tenant:
    """Create a tenant and its ``admin`` role (the system tenant's admin role also holds the
    system permissions). A taken id is a 409."""
    check_tenant_id(tenant_id)
    _check_policy(mfa_policy)
    if session.get(Tenant, tenant_id) is not None:
        raise conflict("a tenant with that id exists")
    moment = int(time.time()) if now is None else now
    tenant = Tenant(id=tenant_id, name=name[:200], mfa_policy=mfa_policy, created_at=moment)
    session.add(tenant)
    permissions = TENANT_ADMIN + (SYSTEM_ADMIN if tenant_id == SYSTEM_TENANT else ())
    session.flush()
    session.add(
        Role(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            name="admin",
            description="administers this tenant",
            permissions=" ".join(permissions),
            created_at=moment,
            updated_at=moment,
        )
    )
    session.flush()
    record(
        session,
        "tenant.created",
        tenant_id=tenant_id,
        context=context,
        details={"after": {"name": tenant.name, "mfa_policy": mfa_policy}},
    )
    return tenant


def find_tenant(session: Session, tenant_id: str) -> Tenant:
    """The tenant ``tenant_id`` (404 if there is none)."""
    tenant = session.get(Tenant, tenant_id) if len(tenant_id) <= 64 else None
    if tenant is None:
        raise not_found("tenant")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    """Every tenant, by id."""
    return list(session.scalars(select(Tenant).order_by(Tenant.id)))


def describe_tenant(tenant: Tenant) -> dict[str, Any]:
    """What an admin sees of a tenant."""
    return {
        "id": tenant.id,
        "name": tenant.name,
        "mfa_policy": tenant.mfa_policy,
        "created_at": tenant.created_at,
    }


def update_tenant(
    session: Session,
    tenant: Tenant,
    *,
    name: str | None = None,
    mfa_policy: str | None = None,
    context: Context | None = None,
) -> dict[str, Any]:
    """Rename a tenant or change its MFA policy; audited with before and after."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if name is not None and name[:200] != tenant.name:
        before["name"], after["name"] = tenant.name, name[:200]
        tenant.name = name[:200]
    if mfa_policy is not None and _check_policy(mfa_policy) != tenant.mfa_policy:
        before["mfa_policy"], after["mfa_policy"] = tenant.mfa_policy, mfa_policy
        tenant.mfa_policy = mfa_policy
    if after:
        session.flush()
        record(
            session,
            "tenant.updated",
            tenant_id=tenant.id,
            context=context,
            details={"before": before, "after": after},
        )
    return after
