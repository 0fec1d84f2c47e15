"""``tessera admin client``: OAuth 2.0 clients. A confidential client's secret is printed once,
at creation or rotation; the database keeps only its keyed hash. A client created with
``--jwks FILE`` (its public JWK Set) has no secret: it authenticates with ``private_key_jwt``.

>>> from typer.testing import CliRunner
>>> "--first-party" in CliRunner().invoke(app, ["create", "--help"]).output
True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import InputError
from ..files import read_bytes
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
RedirectUrisOption = Annotated[
    list[str] | None,
    typer.Option(
        "--redirect-uri",
        help="Where the authorization_code grant sends the browser back (exact match); repeatable.",
    ),
]
PostLogoutUrisOption = Annotated[
    list[str] | None,
    typer.Option(
        "--post-logout-redirect-uri",
        help="Where a browser may go once signed out (exact match); repeatable.",
    ),
]
BackchannelOption = Annotated[
    str | None,
    typer.Option(
        "--backchannel-logout-uri",
        help="An https URI the provider calls when a user signs out.",
        show_default=False,
    ),
]


JwksOption = Annotated[
    Path | None,
    typer.Option(
        "--jwks",
        metavar="FILE",
        help="A JSON file of the client's public JWK Set: it then authenticates with"
        " private_key_jwt (an assertion signed by one of these keys) and has no secret.",
        show_default=False,
    ),
]


def jwks_text(path: Path | None) -> bytes | None:
    """The contents of a ``--jwks`` file (checked by the service), ``None`` when not given.

    >>> jwks_text(None) is None
    True
    """
    return None if path is None else read_bytes(path, "JWKS file")


def uris(values: list[str] | None) -> tuple[str, ...] | None:
    """Repeated URI options as given, once each (never split: a space is refused, not a
    separator); an empty value gives none. ``None`` when the option was not given.

    >>> uris(["https://a.example/cb", "", "https://a.example/cb"]), uris(None)
    (('https://a.example/cb',), None)
    """
    if values is None:
        return None
    return tuple(dict.fromkeys(value for value in values if value))


def _find(session: Session, tenant_id: str, client_id: str) -> Client:
    from tessera.idp.services import clients, tenants

    tenants.find_tenant(session, tenant_id)
    return clients.find_client(session, tenant_id, client_id)


def _show_secret(
    title: str, document: dict[str, Any], secret: str | None, json_output: bool
) -> None:
    if json_output:
        # ``client_id`` and ``client_secret`` as OAuth names them, so a script can hand the
        # document to a relying party as it is (the secret once, in this one member).
        credentials = {"client_id": document["id"], "client_secret": secret}
        show(title, {**document, **credentials}, json_output=True)
        return
    show(title, document, json_output=False)
    if document["token_endpoint_auth_method"] == "private_key_jwt":
        done("a client of private_key_jwt: it has no secret, it signs with its keys")
    elif secret is None:
        done("a public client: it has no secret")
    else:
        reveal("client secret", secret)


@app.command()
def create(
    tenant_id: TenantOption,
    name: Annotated[str, typer.Option("--name", help="Display name.", show_default=False)],
    grants: Annotated[
        list[str] | None,
        typer.Option(
            "--grant",
            help="authorization_code, client_credentials, password or refresh_token; repeatable.",
        ),
    ] = None,
    redirect_uris: RedirectUrisOption = None,
    post_logout_redirect_uris: PostLogoutUrisOption = None,
    backchannel_logout_uri: BackchannelOption = None,
    audiences: Annotated[
        list[str] | None,
        typer.Option(
            "--audience",
            help="An audience (API) of its tokens; repeatable. Optional with authorization_code"
            " (the audience is then the client itself).",
        ),
    ] = None,
    scopes: ScopesOption = None,
    default_scopes: DefaultScopesOption = None,
    public: Annotated[
        bool, typer.Option("--public", help="A public client: no secret (apps in browsers).")
    ] = False,
    first_party: Annotated[
        bool, typer.Option("--first-party", help="Tessera's own app (may use the password grant).")
    ] = False,
    jwks_file: JwksOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a client; a confidential one's secret is printed once (one created with --jwks
    has none: it signs its assertions with its own keys).

    Example (an OpenID Connect web app): tessera admin client create -t acme --name Wiki
    --grant authorization_code --grant refresh_token --redirect-uri https://wiki.example/callback
    --json

    Example (a service with private_key_jwt): tessera admin client create -t acme --name Batch
    --grant client_credentials --audience billing-api --jwks batch.jwks.json
    """
    from tessera.idp.services import clients, tenants

    with refusals(json_output):
        jwks = jwks_text(jwks_file)
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
            redirect_uris=uris(redirect_uris) or (),
            post_logout_redirect_uris=uris(post_logout_redirect_uris) or (),
            backchannel_logout_uri=backchannel_logout_uri or None,
            jwks=jwks,
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


_UPDATE_OPTIONS = (
    "--name, --scope, --default-scope, --redirect-uri, --post-logout-redirect-uri,"
    " --backchannel-logout-uri, --jwks, --disable or --enable"
)


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
    redirect_uris: Annotated[
        list[str] | None,
        typer.Option(
            "--redirect-uri",
            help='Replace the redirect URIs with these; repeatable ("" for none).',
        ),
    ] = None,
    post_logout_redirect_uris: Annotated[
        list[str] | None,
        typer.Option(
            "--post-logout-redirect-uri",
            help='Replace the post-logout redirect URIs; repeatable ("" for none).',
        ),
    ] = None,
    backchannel_logout_uri: Annotated[
        str | None,
        typer.Option(
            "--backchannel-logout-uri", help='A new back-channel logout URI ("" removes it).'
        ),
    ] = None,
    jwks_file: Annotated[
        Path | None,
        typer.Option(
            "--jwks",
            metavar="FILE",
            help="Replace the public JWK Set of a client of private_key_jwt with this file's.",
            show_default=False,
        ),
    ] = None,
    disable: Annotated[
        bool, typer.Option("--disable", help="Refuse the client from now on.")
    ] = False,
    enable: Annotated[bool, typer.Option("--enable", help="Accept it again.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Rename a client, change its scopes, URIs or keys, or disable or enable it.

    Example: tessera admin client update -t acme billing --disable
    """
    from tessera.idp.services import clients

    with refusals(json_output):
        if disable and enable:
            raise InputError("give --disable or --enable, not both")
        status = "disabled" if disable else "active" if enable else None
        asked: tuple[object, ...] = (scopes, default_scopes, redirect_uris, status)
        jwks = jwks_text(jwks_file)
        asked += (post_logout_redirect_uris, backchannel_logout_uri, jwks)
        if display_name(name) is None and all(value is None for value in asked):
            raise InputError(f"nothing to change: give {_UPDATE_OPTIONS}")
        with transaction() as (provider, session):
            client = _find(session, tenant_id, client_id)
            changed = clients.update_client(
                session,
                client,
                name=name,
                allowed_scopes=words(scopes),
                default_scopes=words(default_scopes),
                status=status,
                redirect_uris=uris(redirect_uris),
                post_logout_redirect_uris=uris(post_logout_redirect_uris),
                backchannel_logout_uri=backchannel_logout_uri,
                jwks=jwks,
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
