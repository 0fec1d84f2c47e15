"""``/admin/tenants``: list and create tenants (system admins), read and change one tenant.

A tenant's own admins (``admin:users``) may read it and change its name or MFA policy; listing
and creating tenants takes ``admin:tenants`` and a token of the system tenant.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from ...services import tenants
from ..answers import ProblemRoute
from ..requests import provider_of
from .auth import Admin, system_admin, tenant_admin
from .fields import Body, Name, TenantId

router = APIRouter(route_class=ProblemRoute)

MfaPolicy = Literal["optional", "required"]
SystemAdmin = Annotated[Admin, Depends(system_admin("admin:tenants"))]
TenantAdmin = Annotated[Admin, Depends(tenant_admin("admin:users"))]


class NewTenant(Body):
    """A tenant to create; it comes with an ``admin`` role."""

    id: TenantId
    name: Name
    mfa_policy: MfaPolicy = "optional"


class TenantChange(Body):
    """What to change of a tenant; members left out stay as they are."""

    name: Name | None = None
    mfa_policy: MfaPolicy | None = None


class TenantOut(BaseModel):
    """A tenant as an admin sees it."""

    id: str
    name: str
    mfa_policy: str
    created_at: int


class TenantList(BaseModel):
    """Every tenant, by id."""

    tenants: list[TenantOut]


@router.get("/tenants", response_model=TenantList, summary="List tenants (system admins)")
def list_tenants(request: Request, admin: SystemAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        found = tenants.list_tenants(session)
        return {"tenants": [tenants.describe_tenant(tenant) for tenant in found]}


@router.post(
    "/tenants",
    status_code=201,
    response_model=TenantOut,
    summary="Create a tenant (system admins)",
)
def create_tenant(
    request: Request, response: Response, body: NewTenant, admin: SystemAdmin
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        tenant = tenants.create_tenant(
            session,
            tenant_id=body.id,
            name=body.name,
            mfa_policy=body.mfa_policy,
            context=admin.context,
        )
        made = tenants.describe_tenant(tenant)
    response.headers["Location"] = f"/admin/tenants/{made['id']}"
    return made


@router.get("/tenants/{tenant_id}", response_model=TenantOut, summary="Read a tenant")
def get_tenant(request: Request, admin: TenantAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        return tenants.describe_tenant(tenants.find_tenant(session, admin.tenant))


@router.patch(
    "/tenants/{tenant_id}",
    response_model=TenantOut,
    summary="Rename a tenant or set its MFA policy",
)
def update_tenant(request: Request, body: TenantChange, admin: TenantAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        tenant = tenants.find_tenant(session, admin.tenant)
        tenants.update_tenant(
            session, tenant, name=body.name, mfa_policy=body.mfa_policy, context=admin.context
        )
        return tenants.describe_tenant(tenant)
