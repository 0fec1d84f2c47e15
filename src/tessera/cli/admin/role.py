"""``tessera admin role``: a tenant's roles, each a named set of permissions.

Holders' tokens carry a change from their next refresh.

>>> from typer.testing import CliRunner
>>> "--permission" in CliRunner().invoke(app, ["update", "--help"]).output
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import InputError
from ..output import JsonOption, emit_json
from .connection import context, refusals, transaction
from .inputs import words
from .views import done, listing, show

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tessera.idp.store.models import Role

app = typer.Typer(help="Roles: named sets of permissions, granted to users.")

TenantOption = Annotated[
    str, typer.Option("--tenant", "-t", help="The role's tenant.", show_default=False)
]
NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="The role's name.", show_default=False)
]
PermissionsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--permission",
        "-p",
        help="A permission such as orders:read; repeatable (or several, space-separated).",
    ),
]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="What the role is for.")
]


def _find(session: Session, tenant_id: str, name: str) -> Role:
    from tessera.idp.services import rbac, tenants

    tenants.find_tenant(session, tenant_id)
    return rbac.find_role(session, tenant_id, name)


@app.command()
def create(
    tenant_id: TenantOption,
    name: NameArgument,
    permissions: PermissionsOption = None,
    description: DescriptionOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a role.

    Example: tessera admin role create -t acme support -p orders:read -p tickets:write
    """
    from tessera.idp.services import rbac, tenants

    with refusals(json_output), transaction() as (_, session):
        tenants.find_tenant(session, tenant_id)
        role = rbac.create_role(
            session,
            tenant_id=tenant_id,
            name=name,
            permissions=words(permissions) or (),
            description=description or "",
            context=context(),
        )
        document = rbac.describe_role(role)
    show(f"Role {name} ({tenant_id}) created", document, json_output=json_output)


@app.command("list")
def list_roles(tenant_id: TenantOption, json_output: JsonOption = False) -> None:
    """List a tenant's roles."""
    from tessera.idp.services import rbac, tenants

    with refusals(json_output), transaction(readonly=True) as (_, session):
        tenants.find_tenant(session, tenant_id)
        rows = [rbac.describe_role(role) for role in rbac.list_roles(session, tenant_id)]
    listing("roles", rows, ("name", "permissions", "description"), json_output=json_output)


@app.command("show")
def show_role(tenant_id: TenantOption, name: NameArgument, json_output: JsonOption = False) -> None:
    """Show a role and its permissions."""
    from tessera.idp.services import rbac

    with refusals(json_output), transaction(readonly=True) as (_, session):
        document = rbac.describe_role(_find(session, tenant_id, name))
    show(f"Role {name} ({tenant_id})", document, json_output=json_output)


@app.command()
def update(
    tenant_id: TenantOption,
    name: NameArgument,
    permissions: Annotated[
        list[str] | None,
        typer.Option("--permission", "-p", help="Replace the permissions with these; repeatable."),
    ] = None,
    add: Annotated[
        list[str] | None, typer.Option("--add", help="Add a permission; repeatable.")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Remove a permission; repeatable.")
    ] = None,
    description: DescriptionOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change a role's permissions (replace, add, remove) or description.

    Example: tessera admin role update -t acme support --add refunds:write --remove tickets:write
    """
    from tessera.idp.services import rbac

    with refusals(json_output):
        if permissions is None and add is None and remove is None and description is None:
            raise InputError(
                "nothing to change: give --permission, --add, --remove or --description"
            )
        with transaction() as (_, session):
            role = _find(session, tenant_id, name)
            wanted = None
            if permissions is not None or add is not None or remove is not None:
                start = words(permissions)
                current = role.permissions.split() if start is None else list(start)
                dropped = set(words(remove) or ())
                wanted = [item for item in (*current, *(words(add) or ())) if item not in dropped]
            before = rbac.describe_role(role)
            rbac.update_role(
                session, role, permissions=wanted, description=description, context=context()
            )
            document = rbac.describe_role(role)
            changed = [field for field in document if document[field] != before[field]]
            document["updated"] = [field for field in changed if field != "updated_at"]
    show(f"Role {name} ({tenant_id})", document, json_output=json_output)


@app.command()
def delete(tenant_id: TenantOption, name: NameArgument, json_output: JsonOption = False) -> None:
    """Delete a role; its holders lose its permissions at their next refresh."""
    from tessera.idp.services import rbac

    with refusals(json_output), transaction() as (_, session):
        role = _find(session, tenant_id, name)
        rbac.delete_role(session, role, context=context())
    if json_output:
        emit_json({"tenant": tenant_id, "name": name, "deleted": True})
    else:
        done(f"deleted role {name} of {tenant_id}")
