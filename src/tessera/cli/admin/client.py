"""``tessera admin client``: OAuth 2.0 clients. A confidential client's secret is printed once,
at creation or rotation; the database keeps only its keyed hash.

>>> from typer.testing import CliRunner
>>> "--first-party" in CliRunner().invoke(app, ["create", "--help"]).output
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import InputError
from ..output import JsonOption
from .connection import context, refusals, transaction
from .inputs import display_name, words
from .views import done, listing, reveal, show

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tessera.idp.store.models import Client

app = typer.Typer(help="OAuth 2.0 clients: grants, audiences, scopes, secrets.")

TenantOption = Annotated[
    str, typer.Option("--tenant", "-t", help="The client's tenant.", show_default=False)
]
ClientArgument = Annotated[
    str, typer.Argument(metavar="CLIENT_ID", help="The client's id.", show_default=False)
]
ScopesOption = Annotated[
    list[str] | None,
    typer.Option("--scope", help="A scope the client may ask for; repeatable."),
]
DefaultScopesOption = Annotated[
    list[str] | None,
    typer.Option("--default-scope", help="A scope granted when none is asked; repeatable."),
]


def _find(session: Session, tenant_id: str, client_id: str) -> Client:
    from tessera.idp.services import clients, tenants

    tenants.find_tenant(session, tenant_id)
    return clients.find_client(session, tenant_id, client_id)


def _show_secret(
    title: str, document: dict[str, Any], secret: str | None, json_output: bool
) -> None:
    if json_output:
        show(title, {**document, "secret": secret}, json_output=True)
        return
    show(title, document, json_output=False)
    if secret is None:
        done("a public client: it has no secret")
    else:
        reveal("client secret", secret)


@app.command()
def create(
    tenant_id: TenantOption,
    name: Annotated[str, typer.Option("--name", help="Display name.", show_default=False)],
    grants: Annotated[
        list[str] | None,
        typer.Option("--grant", help="client_credentials, password or refresh_token; repeatable."),
    ] = None,
    audiences: Annotated[
        list[str] | None,
        typer.Option("--audience", help="An audience (API) of its tokens; repeatable."),
    ] = None,
    scopes: ScopesOption = None,
    default_scopes: DefaultScopesOption = None,
    public: Annotated[
        bool, typer.Option("--public", help="A public client: no secret (apps in browsers).")
    ] = False,
    first_party: Annotated[
        bool, typer.Option("--first-party", help="Tessera's own app (may use the password grant).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a client; a confidential one's secret is printed once.

    Example: tessera admin client create -t acme --name Billing --grant client_credentials
    --audience billing-api --scope invoices:read --default-scope invoices:read
    """
    from tessera.idp.services import clients, tenants

    with refusals(json_output), transaction() as (provider, session):
        tenants.find_tenant(session, tenant_id)
        made = clients.register_client(
            session,
            provider.master,
            tenant_id=tenant_id,
            name=display_name(name) or "",
            grant_types=words(grants) or (),
            audience=words(audiences) or (),
            allowed_scopes=words(scopes) or (),
            default_scopes=words(default_scopes) or (),
            first_party=first_party,
            confidential=not public,
            context=context(),
        )
        document = clients.describe_client(made.client)
    # Printed only now that the transaction committed: a secret shown is a secret that works.
    title = f"Client {document['id']} ({tenant_id}) created"
    _show_secret(title, document, made.secret, json_output)


@app.command("list")
def list_clients(tenant_id: TenantOption, json_output: JsonOption = False) -> None:
    """List a tenant's clients."""
    from tessera.idp.services import clients, tenants

    with refusals(json_output), transaction(readonly=True) as (_, session):
        tenants.find_tenant(session, tenant_id)
        rows = [
            clients.describe_client(client) for client in clients.list_clients(session, tenant_id)
        ]
    columns = ("id", "name", "status", "confidential", "grant_types", "audience")
    listing("clients", rows, columns, json_output=json_output)


@app.command("show")
def show_client(
    tenant_id: TenantOption, client_id: ClientArgument, json_output: JsonOption = False
) -> None:
    """Show a client; never its secret."""
    from tessera.idp.services import clients

    with refusals(json_output), transaction(readonly=True) as (_, session):
        document = clients.describe_client(_find(session, tenant_id, client_id))
    show(f"Client {client_id} ({tenant_id})", document, json_output=json_output)


@app.command()
def update(
    tenant_id: TenantOption,
    client_id: ClientArgument,
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Replace the allowed scopes with these; repeatable."),
    ] = None,
    default_scopes: Annotated[
        list[str] | None,
        typer.Option("--default-scope", help="Replace the default scopes; repeatable."),
    ] = None,
    disable: Annotated[
        bool, typer.Option("--disable", help="Refuse the client from now on.")
    ] = False,
    enable: Annotated[bool, typer.Option("--enable", help="Accept it again.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Rename a client, change its scopes, or disable or enable it.

    Example: tessera admin client update -t acme billing --disable
    """
    from tessera.idp.services import clients

    with refusals(json_output):
        if disable and enable:
            raise InputError("give --disable or --enable, not both")
        status = "disabled" if disable else "active" if enable else None
        if (
            display_name(name) is None
            and scopes is None
            and default_scopes is None
            and status is None
        ):
            raise InputError(
                "nothing to change: give --name, --scope, --default-scope, --disable or --enable"
            )
        with transaction() as (provider, session):
            client = _find(session, tenant_id, client_id)
            changed = clients.update_client(
                session,
                client,
                name=name,
                allowed_scopes=words(scopes),
                default_scopes=words(default_scopes),
                status=status,
                cache=provider.clients,
                context=context(),
            )
            document = {**clients.describe_client(client), "updated": sorted(changed)}
    show(f"Client {client_id} ({tenant_id})", document, json_output=json_output)


@app.command("rotate-secret")
def rotate_secret(
    tenant_id: TenantOption, client_id: ClientArgument, json_output: JsonOption = False
) -> None:
    """Give a confidential client a new secret, printed once; the old one stops working."""
    from tessera.idp.services import clients

    with refusals(json_output), transaction() as (provider, session):
        client = _find(session, tenant_id, client_id)
        secret = clients.rotate_secret(
            session, provider.master, client, cache=provider.clients, context=context()
        )
        document = clients.describe_client(client)
    _show_secret(f"Client {client_id} ({tenant_id}): new secret", document, secret, json_output)
