"""``tessera admin tenant``: create, list, show and update tenants.

>>> from typer.testing import CliRunner
>>> "mfa-policy" in CliRunner().invoke(app, ["create", "--help"]).output
True
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import InputError
from ..output import JsonOption
from .connection import context, refusals, transaction
from .inputs import display_name
from .views import listing, show

app = typer.Typer(help="Tenants: isolated spaces of users, roles and clients.")

TenantArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The tenant's id.", show_default=False)
]
MfaPolicyOption = Annotated[
    str | None,
    typer.Option("--mfa-policy", help="optional, or required (every login needs a factor)."),
]


@app.command()
def create(
    tenant_id: TenantArgument,
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: ID).")] = None,
    mfa_policy: MfaPolicyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a tenant, with an `admin` role ready to be granted.

    Example: tessera admin tenant create acme --name "Acme Corp" --mfa-policy required
    """
    from tessera.idp.services import tenants

    with refusals(json_output), transaction() as (_, session):
        tenant = tenants.create_tenant(
            session,
            tenant_id=tenant_id,
            name=display_name(name) or tenant_id,
            mfa_policy=mfa_policy or "optional",
            context=context(),
        )
        document = tenants.describe_tenant(tenant)
    show(f"Tenant {tenant_id} created", document, json_output=json_output)


@app.command("list")
def list_tenants(json_output: JsonOption = False) -> None:
    """List every tenant."""
    from tessera.idp.services import tenants

    with refusals(json_output), transaction(readonly=True) as (_, session):
        rows = [tenants.describe_tenant(tenant) for tenant in tenants.list_tenants(session)]
    listing("tenants", rows, ("id", "name", "mfa_policy", "created_at"), json_output=json_output)


@app.command("show")
def show_tenant(tenant_id: TenantArgument, json_output: JsonOption = False) -> None:
    """Show a tenant."""
    from tessera.idp.services import tenants

    with refusals(json_output), transaction(readonly=True) as (_, session):
        document = tenants.describe_tenant(tenants.find_tenant(session, tenant_id))
    show(f"Tenant {tenant_id}", document, json_output=json_output)


@app.command()
def update(
    tenant_id: TenantArgument,
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    mfa_policy: MfaPolicyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Rename a tenant or change its MFA policy.

    Example: tessera admin tenant update acme --mfa-policy required
    """
    from tessera.idp.services import tenants

    with refusals(json_output):
        if display_name(name) is None and mfa_policy is None:
            raise InputError("nothing to change: give --name or --mfa-policy")
        with transaction() as (_, session):
            tenant = tenants.find_tenant(session, tenant_id)
            changed = tenants.update_tenant(
                session, tenant, name=name, mfa_policy=mfa_policy, context=context()
            )
            document = {**tenants.describe_tenant(tenant), "updated": sorted(changed)}
    show(f"Tenant {tenant_id}", document, json_output=json_output)
