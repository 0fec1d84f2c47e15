"""``/admin/tenants/{tenant_id}/roles``: a tenant's roles and the permissions they grant
(``admin:roles``). A change reaches its holders' tokens at their next refresh."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...services import rbac
from ...store.models import ROLE_NAME_LENGTH, Role
from ..answers import ProblemRoute
from ..requests import provider_of
from .auth import Admin, tenant_admin
from .fields import Body, Description, Permissions, RoleName, path_value

router = APIRouter(route_class=ProblemRoute)

RolesAdmin = Annotated[Admin, Depends(tenant_admin("admin:roles"))]


class NewRole(Body):
    """A role to create."""

    name: RoleName
    permissions: Permissions = Field(default_factory=list)
    description: Description = ""


class RoleChange(Body):
    """What to change of a role; members left out stay as they are."""

    permissions: Permissions | None = None
    description: Description | None = None


class RoleOut(BaseModel):
    """A role as an admin sees it."""

    name: str
    tenant: str
    description: str
    permissions: list[str]
    created_at: int
    updated_at: int


class RoleList(BaseModel):
    """Every role of a tenant, by name."""

    roles: list[RoleOut]


def _role(session: Session, admin: Admin, name: str) -> Role:
    return rbac.find_role(session, admin.tenant, path_value(name, "role", ROLE_NAME_LENGTH))


# Handlers are plain functions: FastAPI runs them on its worker threads, database work and all.


@router.get("/tenants/{tenant_id}/roles", response_model=RoleList, summary="List roles")
def list_roles(request: Request, admin: RolesAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        roles = rbac.list_roles(session, admin.tenant)
        return {"roles": [rbac.describe_role(role) for role in roles]}


@router.post(
    "/tenants/{tenant_id}/roles", status_code=201, response_model=RoleOut, summary="Create a role"
)
def create_role(
    request: Request, response: Response, body: NewRole, admin: RolesAdmin
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        role = rbac.create_role(
            session,
            tenant_id=admin.tenant,
            name=body.name,
            permissions=body.permissions,
            description=body.description,
            held=admin.principal.scopes,
            context=admin.context,
        )
        made = rbac.describe_role(role)
    response.headers["Location"] = f"/admin/tenants/{admin.tenant}/roles/{made['name']}"
    return made


@router.get("/tenants/{tenant_id}/roles/{name}", response_model=RoleOut, summary="Read a role")
def get_role(request: Request, name: str, admin: RolesAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        return rbac.describe_role(_role(session, admin, name))


@router.patch(
    "/tenants/{tenant_id}/roles/{name}",
    response_model=RoleOut,
    summary="Change a role's permissions or description",
)
def update_role(request: Request, name: str, body: RoleChange, admin: RolesAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        role = rbac.update_role(
            session,
            _role(session, admin, name),
            permissions=body.permissions,
            description=body.description,
            held=admin.principal.scopes,
            context=admin.context,
        )
        return rbac.describe_role(role)


@router.delete(
    "/tenants/{tenant_id}/roles/{name}",
    status_code=204,
    response_class=Response,
    summary="Delete a role (its holders lose it)",
)
def delete_role(request: Request, name: str, admin: RolesAdmin) -> Response:
    provider = provider_of(request)
    with provider.database.session() as session:
        rbac.delete_role(session, _role(session, admin, name), context=admin.context)
    return Response(status_code=204)
