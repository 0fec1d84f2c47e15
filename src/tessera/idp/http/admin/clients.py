"""``/admin/tenants/{tenant_id}/clients``: OAuth clients of a tenant (``admin:clients``).

A confidential client's secret is in the answer exactly twice in its life: when it is created
and when it is rotated — each time once, never cached, never in a read or the audit log. A client
that registers ``jwks`` (its public JWK Set) has no secret: it authenticates with
``private_key_jwt``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...services import clients
from ...store.models import ID_LENGTH, Client
from ..answers import NO_STORE, ProblemRoute
from ..requests import provider_of
from .auth import Admin, tenant_admin
from .fields import (
    Algorithm,
    Audience,
    Body,
    GrantType,
    JwkSet,
    Name,
    Permissions,
    Uri,
    Uris,
    path_value,
)

router = APIRouter(route_class=ProblemRoute)

ClientsAdmin = Annotated[Admin, Depends(tenant_admin("admin:clients"))]


class NewClient(Body):
    """A client to register. ``confidential`` clients get a secret; the password grant is for
    ``first_party`` clients only. A client of the ``authorization_code`` grant (an OpenID
    Connect relying party) registers its ``redirect_uris``, and may leave out ``audience``
    (its tokens are then for itself: the audience is its client id). A confidential client
    that gives ``jwks``, its public JWK Set (1 to 10 RSA, EC or Ed25519 keys), gets no secret:
    it authenticates with ``private_key_jwt``, an assertion signed by one of these keys."""

    name: Name
    grant_types: Annotated[list[GrantType], Field(min_length=1, max_length=4)]
    audience: Annotated[list[Audience], Field(max_length=10)] = Field(default_factory=list)
    allowed_scopes: Permissions = Field(default_factory=list)
    default_scopes: Permissions = Field(default_factory=list)
    first_party: bool = False
    confidential: bool = True
    redirect_uris: Uris = Field(default_factory=list)
    post_logout_redirect_uris: Uris = Field(default_factory=list)
    backchannel_logout_uri: Uri | None = None
    id_token_signed_response_alg: Algorithm = "RS256"
    jwks: JwkSet | None = None


class ClientChange(Body):
    """What to change of a client; members left out stay as they are. The URI lists are
    replaced whole; ``backchannel_logout_uri`` given as ``null`` or ``""`` is removed. ``jwks``
    replaces the keys of a client of ``private_key_jwt`` (``null``: they stay as they are)."""

    name: Name | None = None
    allowed_scopes: Permissions | None = None
    default_scopes: Permissions | None = None
    status: Literal["active", "disabled"] | None = None
    redirect_uris: Uris | None = None
    post_logout_redirect_uris: Uris | None = None
    backchannel_logout_uri: Uri | None = None
    jwks: JwkSet | None = None

    def backchannel_change(self) -> str | None:
        """The back-channel logout URI as the service takes it: ``None`` to keep it, ``""`` to
        remove it (an explicit ``null``), else the new one.

        >>> ClientChange(backchannel_logout_uri=None).backchannel_change()
        ''
        >>> ClientChange().backchannel_change() is None
        True
        """
        if (
            self.backchannel_logout_uri is None
            and "backchannel_logout_uri" in self.model_fields_set
        ):
            return ""
        return self.backchannel_logout_uri


class ClientOut(BaseModel):
    """A client as an admin sees it (never its secret or the secret's hash)."""

    id: str
    tenant: str
    name: str
    confidential: bool
    first_party: bool
    status: str
    grant_types: list[str]
    allowed_scopes: list[str]
    default_scopes: list[str]
    audience: list[str]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    backchannel_logout_uri: str | None
    id_token_signed_response_alg: str
    token_endpoint_auth_method: Literal["client_secret_basic", "private_key_jwt", "none"]
    jwks: dict[str, Any] | None
    created_at: int


class CreatedClient(ClientOut):
    """A client just registered, with its secret (``null`` for a public client or one of
    ``private_key_jwt``) — shown once."""

    client_secret: str | None


class ClientList(BaseModel):
    """Every client of a tenant, by id."""

    clients: list[ClientOut]


class NewSecret(BaseModel):
    """A client's new secret, shown once; the old one no longer works."""

    client_id: str
    client_secret: str


def _maybe(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _client(session: Session, admin: Admin, client_id: str) -> Client:
    return clients.find_client(session, admin.tenant, path_value(client_id, "client", ID_LENGTH))


@router.get("/tenants/{tenant_id}/clients", response_model=ClientList, summary="List clients")
def list_clients(request: Request, admin: ClientsAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        found = clients.list_clients(session, admin.tenant)
        return {"clients": [clients.describe_client(item) for item in found]}


@router.post(
    "/tenants/{tenant_id}/clients",
    status_code=201,
    response_model=CreatedClient,
    summary="Register a client (its secret is in this answer only)",
)
def create_client(
    request: Request, response: Response, body: NewClient, admin: ClientsAdmin
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        made = clients.register_client(
            session,
            provider.master,
            tenant_id=admin.tenant,
            name=body.name,
            grant_types=tuple(dict.fromkeys(body.grant_types)),
            audience=tuple(dict.fromkeys(body.audience)),
            allowed_scopes=tuple(dict.fromkeys(body.allowed_scopes)),
            default_scopes=tuple(dict.fromkeys(body.default_scopes)),
            first_party=body.first_party,
            confidential=body.confidential,
            redirect_uris=tuple(dict.fromkeys(body.redirect_uris)),
            post_logout_redirect_uris=tuple(dict.fromkeys(body.post_logout_redirect_uris)),
            backchannel_logout_uri=body.backchannel_logout_uri,
            id_token_signed_response_alg=body.id_token_signed_response_alg,
            jwks=body.jwks,
            held=admin.principal.scopes,
            context=admin.context,
        )
        answer = {**clients.describe_client(made.client), "client_secret": made.secret}
    response.headers["Location"] = f"/admin/tenants/{admin.tenant}/clients/{answer['id']}"
    response.headers.update(NO_STORE)
    return answer


@router.get(
    "/tenants/{tenant_id}/clients/{client_id}", response_model=ClientOut, summary="Read a client"
)
def get_client(request: Request, client_id: str, admin: ClientsAdmin) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session(readonly=True) as session:
        return clients.describe_client(_client(session, admin, client_id))


@router.patch(
    "/tenants/{tenant_id}/clients/{client_id}",
    response_model=ClientOut,
    summary="Rename a client, change its scopes, URIs or keys, disable or enable it",
)
def update_client(
    request: Request, client_id: str, body: ClientChange, admin: ClientsAdmin
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        client = _client(session, admin, client_id)
        clients.update_client(
            session,
            client,
            name=body.name,
            allowed_scopes=_maybe(body.allowed_scopes),
            default_scopes=_maybe(body.default_scopes),
            status=body.status,
            redirect_uris=_maybe(body.redirect_uris),
            post_logout_redirect_uris=_maybe(body.post_logout_redirect_uris),
            backchannel_logout_uri=body.backchannel_change(),
            jwks=body.jwks,
            cache=provider.clients,
            held=admin.principal.scopes,
            context=admin.context,
        )
        return clients.describe_client(client)


@router.post(
    "/tenants/{tenant_id}/clients/{client_id}/rotate-secret",
    response_model=NewSecret,
    summary="Give a confidential client a new secret (in this answer only)",
)
def rotate_secret(
    request: Request, response: Response, client_id: str, admin: ClientsAdmin
) -> dict[str, Any]:
    provider = provider_of(request)
    with provider.database.session() as session:
        client = _client(session, admin, client_id)
        secret = clients.rotate_secret(
            session, provider.master, client, cache=provider.clients, context=admin.context
        )
    response.headers.update(NO_STORE)
    return {"client_id": client_id, "client_secret": secret}
