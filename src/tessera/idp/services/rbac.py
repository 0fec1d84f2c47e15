"""Roles and permissions (RBAC): per tenant, a role is a named set of permissions; users hold
roles; a user token's scope is what was asked ∩ what the client allows ∩ what the roles permit.

Permissions are scope strings (``orders:read``). The ``admin:*`` ones open the admin API; the
system permissions (``admin:tenants``, ``admin:keys``) act on every tenant and exist only in the
system tenant, so no tenant admin can grant them. No admin grants an ``admin:*`` permission they
do not hold themselves (``held``: the scopes of their token) — not in a role, not through a role
given to a user, not to a client; an operator at the command line (``held=None``) may.

>>> permitted_scope(("a", "b", "z"), frozenset({"a", "b", "c"}))
('a', 'b')
>>> check_permissions(["orders:read", "admin:users"])
('orders:read', 'admin:users')
>>> check_grantable(["orders:read", "admin:keys"], held=frozenset({"admin:roles"}))
Traceback (most recent call last):
...
tessera.idp.errors.AdminError: forbidden: cannot grant admin:keys, which you do not hold
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, delete, func, select
from sqlalchemy.orm import Session

from ..errors import conflict, forbidden, not_found, unprocessable
from ..store.models import Role, User, UserRole
from .audit import Context, record

SYSTEM_TENANT = "default"
TENANT_ADMIN = ("admin:users", "admin:roles", "admin:clients", "admin:audit")
SYSTEM_ADMIN = ("admin:tenants", "admin:keys")
ADMIN_PREFIX = "admin:"

# RFC 6749 §3.3 scope-token characters, bounded; role names a little stricter.
_PERMISSION = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,100}")
_ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


@dataclass(frozen=True, slots=True)
class Access:
    """What a user holds: role names (sorted) and the union of their permissions."""

    roles: tuple[str, ...]
    permissions: frozenset[str]


def check_permissions(permissions: Iterable[str], *, tenant_id: str = "") -> tuple[str, ...]:
    """Validated permissions, in order, without duplicates; system permissions only in the
    system tenant (:class:`~tessera.idp.errors.AdminError` otherwise)."""
    checked = tuple(dict.fromkeys(permissions))
    for permission in checked:
        if not _PERMISSION.fullmatch(permission):
            raise unprocessable("a permission is 1-100 visible characters, no space, quote or \\")
        if permission in SYSTEM_ADMIN and tenant_id and tenant_id != SYSTEM_TENANT:
            raise unprocessable(f"{permission} exists only in the system tenant")
    return checked


def check_grantable(permissions: Iterable[str], *, held: frozenset[str] | None) -> None:
    """Refuse (403) granting an ``admin:*`` permission the granting admin does not hold;
    ``held=None`` (the operator's command line) may grant anything."""
    if held is None:
        return
    for permission in permissions:
        if permission.startswith(ADMIN_PREFIX) and permission not in held:
            raise forbidden(f"cannot grant {permission}, which you do not hold")


def permitted_scope(scope: tuple[str, ...], permissions: frozenset[str]) -> tuple[str, ...]:
    """``scope`` narrowed to ``permissions``, order kept."""
    return tuple(item for item in scope if item in permissions)


def access_columns(user_id: Any) -> tuple[ScalarSelect[Any], ScalarSelect[Any]]:
    """Two correlated subqueries for the user whose id is ``user_id`` (a column or a bound
    parameter): their role names and their roles' permissions, each space-joined (NULL without
    roles) — so a query that reads a user reads their access in the same round trip.
    :func:`access_from` turns the two into an :class:`Access`."""

    def joined(column: Any) -> ScalarSelect[Any]:
        return (
            select(func.aggregate_strings(column, " "))
            .select_from(Role)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user_id)
            .scalar_subquery()
        )

    return joined(Role.name), joined(Role.permissions)


def access_from(names: str | None, permissions: str | None) -> Access:
    """The :class:`Access` that :func:`access_columns` read.

    >>> access = access_from("ops admin", "b a c")
    >>> access.roles, sorted(access.permissions), access_from(None, None).roles
    (('admin', 'ops'), ['a', 'b', 'c'], ())
    """
    return Access(tuple(sorted((names or "").split())), frozenset((permissions or "").split()))


_ACCESS = select(*access_columns(bindparam("user_id")))


def access_of(session: Session, user_id: str) -> Access:
    """The roles of a user and the permissions they add up to (one query)."""
    names, permissions = session.execute(_ACCESS, {"user_id": user_id}).one()
    return access_from(names, permissions)


def find_role(session: Session, tenant_id: str, name: str) -> Role:
    """The role ``name`` of ``tenant_id`` (a 404 ``AdminError`` if there is none)."""
    role = session.scalar(select(Role).where(Role.tenant_id == tenant_id, Role.name == name))
    if role is None:
        raise not_found("role")
    return role


def describe_role(role: Role) -> dict[str, Any]:
    """What an admin sees of a role (the REST API and the CLI alike)."""
    return {
        "name": role.name,
        "tenant": role.tenant_id,
        "description": role.description,
        "permissions": role.permissions.split(),
        "created_at": role.created_at,
        "updated_at": role.updated_at,
    }


def list_roles(session: Session, tenant_id: str) -> list[Role]:
    """Every role of ``tenant_id``, by name."""
    return list(
        session.scalars(select(Role).where(Role.tenant_id == tenant_id).order_by(Role.name))
    )


def create_role(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    permissions: Iterable[str] = (),
    description: str = "",
    held: frozenset[str] | None = None,
    context: Context | None = None,
) -> Role:
    """Create a role (audited). A taken name is a 409, a bad permission a 422, an ``admin:*``
    permission the creator does not hold (``held``) a 403."""
    if not _ROLE_NAME.fullmatch(name):
        raise unprocessable("a role name is 1-100 letters, digits, '_', '.', ':' or '-'")
    checked = check_permissions(permissions, tenant_id=tenant_id)
    check_grantable(checked, held=held)
    if session.scalar(select(Role.id).where(Role.tenant_id == tenant_id, Role.name == name)):
        raise conflict("a role of that name exists")
    now = int(time.time())
    role = Role(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        name=name,
        description=description[:500],
        permissions=" ".join(checked),
        created_at=now,
        updated_at=now,
    )
    session.add(role)
    session.flush()
    record(
        session,
        "role.created",
        tenant_id=tenant_id,
        context=context,
        details={"role": name, "after": {"permissions": list(checked)}},
    )
    return role


def update_role(
    session: Session,
    role: Role,
    *,
    permissions: Iterable[str] | None = None,
    description: str | None = None,
    held: frozenset[str] | None = None,
    context: Context | None = None,
) -> Role:
    """Change a role's permissions or description; the audit row holds before and after.
    Holders' tokens carry the change from their next refresh. Adding an ``admin:*`` permission
    the changer does not hold (``held``) is a 403."""
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    if permissions is not None:
        wanted = check_permissions(permissions, tenant_id=role.tenant_id)
        check_grantable(set(wanted) - set(role.permissions.split()), held=held)
        checked = " ".join(wanted)
        if checked != role.permissions:
            before["permissions"], after["permissions"] = role.permissions.split(), checked.split()
            role.permissions = checked
    if description is not None and description[:500] != role.description:
        before["description"], after["description"] = role.description, description[:500]
        role.description = description[:500]
    if after:
        role.updated_at = int(time.time())
        session.flush()
        record(
            session,
            "role.updated",
            tenant_id=role.tenant_id,
            context=context,
            details={"role": role.name, "before": before, "after": after},
        )
    return role


def delete_role(session: Session, role: Role, *, context: Context | None = None) -> None:
    """Delete a role; its holders lose it (and its permissions) at their next refresh."""
    holders = session.scalars(select(UserRole.user_id).where(UserRole.role_id == role.id)).all()
    session.execute(delete(UserRole).where(UserRole.role_id == role.id))
    session.delete(role)
    session.flush()
    record(
        session,
        "role.deleted",
        tenant_id=role.tenant_id,
        context=context,
        details={
            "role": role.name,
            "before": {"permissions": role.permissions.split()},
            "holders": len(holders),
        },
    )


def set_roles(
    session: Session,
    user: User,
    names: Iterable[str],
    *,
    held: frozenset[str] | None = None,
    context: Context | None = None,
    audited: bool = True,
) -> tuple[str, ...]:
    """Make ``names`` exactly the roles of ``user`` (roles of the user's tenant; an unknown
    name is a 422 and changes nothing; a new role carrying an ``admin:*`` permission the granter
    does not hold (``held``) a 403). Audited with before and after (unless the caller records
    the change in its own row: ``audited=False``); returns the new set."""
    before = access_of(session, user.id).roles
    names = tuple(names)
    if held is not None:
        added = set(names) - set(before)
        granted = session.scalars(
            select(Role.permissions).where(Role.tenant_id == user.tenant_id, Role.name.in_(added))
        )
        check_grantable((item for text in granted for item in text.split()), held=held)
    wanted = _replace_roles(session, user, names)
    if audited and before != wanted:
        record(
            session,
            "user.roles_changed",
            tenant_id=user.tenant_id,
            context=context,
            subject=user.id,
            details={"before": {"roles": list(before)}, "after": {"roles": list(wanted)}},
        )
    return wanted


def _replace_roles(session: Session, user: User, names: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(sorted(dict.fromkeys(names)))
    roles = {
        role.name: role
        for role in session.scalars(
            select(Role).where(Role.tenant_id == user.tenant_id, Role.name.in_(wanted))
        )
    }
    missing = [name for name in wanted if name not in roles]
    if missing:
        raise unprocessable(f"no such role: {', '.join(missing)}")
    session.execute(delete(UserRole).where(UserRole.user_id == user.id))
    session.add_all(UserRole(user_id=user.id, role_id=roles[name].id) for name in wanted)
    session.flush()
    return wanted
