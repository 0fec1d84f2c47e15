"""OAuth 2.0 clients: creation (the secret is shown once), and client authentication by secret.

A client authenticates at the token endpoint in one of three ways, derived from what is stored
(:func:`auth_method`): with its secret (``client_secret_basic`` or ``client_secret_post``), with
an assertion signed by a key of its registered JWK Set (``private_key_jwt``,
:mod:`~tessera.idp.services.client_assertions`; such a client has no secret), or, a public
client, not at all.

>>> split_scopes("b a  b")
('b', 'a')
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from ..errors import invalid_client, not_found, unprocessable
from ..store import prepared
from ..store.database import Database, after_commit
from ..store.models import Client
from .audit import Context, record
from .client_assertions import check_jwks, key_ids, stored_jwks
from .id_tokens import ID_TOKEN_ALGS
from .rbac import check_grantable, check_permissions
from .redirect_uris import registration_problem
from .secrets import MasterKey, new_secret, same

_ID_ALPHABET = string.ascii_letters + string.digits
GRANT_TYPES = ("authorization_code", "client_credentials", "password", "refresh_token")
# How many redirect URIs (and, apart, post-logout redirect URIs) a client registers at most.
MAX_URIS = 10

SECRET_PURPOSE = "client-secret"


@dataclass(frozen=True, slots=True)
class NewClient:
    """A client just created, with its secret in clear — the only time it exists so."""

    client: Client
    secret: str | None


def split_scopes(text: str | None) -> tuple[str, ...]:
    """Space-separated scopes as an ordered tuple without duplicates."""
    return tuple(dict.fromkeys((text or "").split()))


def new_client_id() -> str:
    """A fresh client id: 24 letters and digits (142 bits), safe in URLs, shells and command
    lines (base64url could start with '-', which every CLI reads as an option).

    >>> client_id = new_client_id()
    >>> len(client_id), client_id.isalnum()
    (24, True)
    """
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def create_client(
    session: Session,
    master: MasterKey,
    *,
    tenant_id: str,
    name: str,
    grant_types: tuple[str, ...],
    audience: tuple[str, ...],
    allowed_scopes: tuple[str, ...] = (),
    default_scopes: tuple[str, ...] = (),
    first_party: bool = False,
    confidential: bool = True,
    client_id: str | None = None,
    redirect_uris: tuple[str, ...] = (),
    post_logout_redirect_uris: tuple[str, ...] = (),
    backchannel_logout_uri: str | None = None,
    id_token_signed_response_alg: str = "RS256",
    jwks: Mapping[str, Any] | str | bytes | None = None,
) -> NewClient:
    """Create a client; a confidential one gets a 256-bit secret stored only as a keyed hash,
    unless it registers ``jwks``, its public JWK Set (as :func:`.client_assertions.check_jwks`
    allows): it then has no secret and authenticates with ``private_key_jwt``. Its URIs follow
    :func:`uri_problem`. What may not be registered is a :class:`ValueError`.

    >>> from tessera.jose import Key
    >>> private = Key.generate("ES256").to_jwk(private=True)
    >>> create_client(Session(), MasterKey(bytes(32)), tenant_id="acme", name="batch",
    ...     grant_types=("client_credentials",), audience=("api",), jwks={"keys": [private]})
    Traceback (most recent call last):
    ...
    ValueError: key 1 holds private members: a client registers its public keys only
    """
    if not audience:
        raise ValueError("a client needs at least one audience")
    if not set(default_scopes) <= set(allowed_scopes):
        raise ValueError("default scopes must be allowed scopes")
    problem = uri_problem(
        grant_types, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri
    )
    if problem is not None:
        raise ValueError(problem)
    if id_token_signed_response_alg not in ID_TOKEN_ALGS:
        raise ValueError(f"ID tokens are signed with one of {', '.join(ID_TOKEN_ALGS)}")
    if jwks is not None and not confidential:
        raise ValueError("a client with a JWK Set is confidential (it authenticates with its keys)")
    stored_keys = None if jwks is None else check_jwks(jwks)
    secret = new_secret() if confidential and stored_keys is None else None
    client = Client(
        id=client_id or new_client_id(),
        tenant_id=tenant_id,
        name=name,
        secret_hash=master.keyed_hash(SECRET_PURPOSE, secret) if secret else None,
        grant_types=" ".join(grant_types),
        allowed_scopes=" ".join(allowed_scopes),
        default_scopes=" ".join(default_scopes),
        audience=" ".join(audience),
        first_party=first_party,
        created_at=int(time.time()),
        redirect_uris=" ".join(dict.fromkeys(redirect_uris)),
        post_logout_redirect_uris=" ".join(dict.fromkeys(post_logout_redirect_uris)),
        backchannel_logout_uri=backchannel_logout_uri,
        id_token_signed_response_alg=id_token_signed_response_alg,
        jwks=stored_keys,
    )
    session.add(client)
    session.flush()
    return NewClient(client, secret)


_CLIENTS = cast(Table, Client.__table__)
_BY_ID = select(_CLIENTS).where(_CLIENTS.c.id == bindparam("id"))


class ClientCache:
    """Clients read in the last ``ttl`` seconds, so a busy token endpoint does not read the same
    row on every grant. A change made on this node (a rotated secret) is seen at once through
    :meth:`forget`; one made on another node is seen within ``ttl`` seconds.

    >>> ClientCache(ttl=5).size
    0
    """

    def __init__(self, ttl: float = 5.0, capacity: int = 4096) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: dict[str, tuple[float, Client]] = {}

    @property
    def size(self) -> int:
        """How many clients are held."""
        return len(self._entries)

    def get(self, database: Database, client_id: str) -> Client | None:
        """The client (detached: read-only here), from memory while fresh, else read from
        ``database`` (a prepared read: the SSO hop may make it on the event loop)."""
        entry = self._entries.get(client_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return self._remember(client_id, database.first(_BY_ID, {"id": client_id}))

    async def read(self, database: Database, client_id: str) -> Client | None:
        """:meth:`get` on the event loop: a client not in memory is read with
        ``Database.read``."""
        entry = self._entries.get(client_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return self._remember(client_id, await database.read(_BY_ID, {"id": client_id}))

    def _remember(self, client_id: str, row: Any | None) -> Client | None:
        client = None if row is None else prepared.detached(Client, row)
        if client is not None:
            if len(self._entries) >= self.capacity:
                self._entries.clear()
            self._entries[client_id] = (time.monotonic() + self.ttl, client)
        return client

    def forget(self, client_id: str) -> None:
        """Drop a client changed on this node."""
        self._entries.pop(client_id, None)


def authenticate_client(
    session: Session, master: MasterKey, client_id: str, secret: str | None
) -> Client:
    """The client whose id and secret these are; any mismatch is the same ``invalid_client``
    (:func:`check_credentials` on the client read in ``session``)."""
    client = None if len(client_id) > 64 else session.get(Client, client_id)
    return check_credentials(master, client, secret)


def check_credentials(master: MasterKey, client: Client | None, secret: str | None) -> Client:
    """``client``, if ``secret`` is its credential; any mismatch (no such client, too) is the
    same ``invalid_client``.

    A public client (no secret stored) authenticates by id alone and only where its grant
    allows it; a confidential client must present its secret. A client that registered a JWK
    Set authenticates only with an assertion (``private_key_jwt``), never by id or secret.
    """
    presented = master.keyed_hash(SECRET_PURPOSE, secret or "")
    if client is None or client.status != "active" or client.jwks is not None:
        raise invalid_client()
    if client.secret_hash is None:
        if secret:
            raise invalid_client()
        return client
    if not secret or not same(presented, client.secret_hash):
        raise invalid_client()
    return client


def rotate_secret(
    session: Session,
    master: MasterKey,
    client: Client,
    *,
    cache: ClientCache | None = None,
    context: Context | None = None,
) -> str:
    """Give a confidential ``client`` a new secret (returned once); the old one stops working
    at once on this node, and on others within the client cache's ttl. Audited."""
    if client.jwks is not None:
        raise unprocessable("a client of private_key_jwt has no secret: it uses its keys")
    if client.secret_hash is None:
        raise unprocessable("a public client has no secret")
    secret = new_secret()
    client.secret_hash = master.keyed_hash(SECRET_PURPOSE, secret)
    session.flush()
    _changed(session, client, cache)
    record(
        session,
        "client.secret_rotated",
        tenant_id=client.tenant_id,
        context=context,
        client_id=client.id,
    )
    return secret


def find_client(session: Session, tenant_id: str, client_id: str) -> Client:
    """The client ``client_id`` of ``tenant_id``; one of another tenant is as absent (404)."""
    client = session.get(Client, client_id) if len(client_id) <= 64 else None
    if client is None or client.tenant_id != tenant_id:
        raise not_found("client")
    return client


def list_clients(session: Session, tenant_id: str) -> list[Client]:
    """Every client of ``tenant_id``, by id."""
    return list(
        session.scalars(select(Client).where(Client.tenant_id == tenant_id).order_by(Client.id))
    )


def describe_client(client: Client) -> dict[str, Any]:
    """What an admin sees of a client: never its secret or the secret's hash (its JWK Set, a
    set of public keys, is shown)."""
    return {
        "id": client.id,
        "tenant": client.tenant_id,
        "name": client.name,
        "confidential": is_confidential(client),
        "first_party": client.first_party,
        "status": client.status,
        "grant_types": client.grant_types.split(),
        "allowed_scopes": client.allowed_scopes.split(),
        "default_scopes": client.default_scopes.split(),
        "audience": client.audience.split(),
        "redirect_uris": client.redirect_uris.split(),
        "post_logout_redirect_uris": client.post_logout_redirect_uris.split(),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "token_endpoint_auth_method": auth_method(client),
        "jwks": stored_jwks(client.jwks),
        "created_at": client.created_at,
    }


def auth_method(client: Client) -> str:
    """How ``client`` authenticates at the token endpoint (RFC 7591 §2): with an assertion
    signed by one of its keys, with its secret, or, a public client, not at all. Derived from
    whether a JWK Set or a secret is stored.

    >>> auth_method(Client(secret_hash=None)), auth_method(Client(jwks='{"keys":[]}'))
    ('none', 'private_key_jwt')
    """
    if client.jwks is not None:
        return "private_key_jwt"
    return "none" if client.secret_hash is None else "client_secret_basic"


def is_confidential(client: Client) -> bool:
    """Whether ``client`` proves who it is (RFC 6749 §2.1): by its secret or by its keys.

    >>> is_confidential(Client(secret_hash=None)), is_confidential(Client(jwks='{"keys":[]}'))
    (False, True)
    """
    return client.secret_hash is not None or client.jwks is not None


def uri_problem(
    grant_types: Collection[str],
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...] = (),
    backchannel_logout_uri: str | None = None,
) -> str | None:
    """Why a client with ``grant_types`` may not register these URIs, or ``None`` when it may.

    The authorization_code grant needs a redirect URI; a client without it has no use for
    redirect or logout URIs (dead configuration is refused, not stored). Every URI must be one
    that may be registered (:func:`~tessera.idp.services.redirect_uris.registration_problem`).

    >>> uri_problem(("authorization_code",), ())
    'the authorization_code grant needs a redirect URI'
    >>> uri_problem(("client_credentials",), ("https://app.example/cb",))
    'redirect and logout URIs are for clients of the authorization_code grant'
    >>> uri_problem(("authorization_code",), ("https://app.example/cb",)) is None
    True
    """
    if "authorization_code" not in grant_types:
        if redirect_uris or post_logout_redirect_uris or backchannel_logout_uri:
            return "redirect and logout URIs are for clients of the authorization_code grant"
        return None
    if not redirect_uris:
        return "the authorization_code grant needs a redirect URI"
    if len(redirect_uris) > MAX_URIS or len(post_logout_redirect_uris) > MAX_URIS:
        return f"a client registers at most {MAX_URIS} redirect URIs of each kind"
    for uri in (*redirect_uris, *post_logout_redirect_uris):
        problem = registration_problem(uri)
        if problem is not None:
            return problem
    if backchannel_logout_uri is not None:
        problem = registration_problem(backchannel_logout_uri, web_only=True)
        if problem is not None:
            return problem.replace("a redirect URI", "a back-channel logout URI")
    return None


def register_client(
    session: Session,
    master: MasterKey,
    *,
    tenant_id: str,
    name: str,
    grant_types: tuple[str, ...],
    audience: tuple[str, ...] = (),
    allowed_scopes: tuple[str, ...] = (),
    default_scopes: tuple[str, ...] = (),
    first_party: bool = False,
    confidential: bool = True,
    redirect_uris: tuple[str, ...] = (),
    post_logout_redirect_uris: tuple[str, ...] = (),
    backchannel_logout_uri: str | None = None,
    id_token_signed_response_alg: str = "RS256",
    jwks: Mapping[str, Any] | str | bytes | None = None,
    held: frozenset[str] | None = None,
    context: Context | None = None,
) -> NewClient:
    """What an admin creates: :func:`create_client` with every input checked (a 422 otherwise;
    an ``admin:*`` scope the creator does not hold, ``held``, a 403) and the creation audited.
    The secret is in the answer once and nowhere else.

    A client of the authorization_code grant (an OpenID Connect relying party) may leave out
    its ``audience``: its access tokens are then for itself (the audience is its client id).
    Every other client names at least one audience. A client that registers ``jwks`` has no
    secret: it authenticates with ``private_key_jwt``; the audit row names its keys by kid and
    thumbprint."""
    unknown = set(grant_types) - set(GRANT_TYPES)
    if not grant_types or unknown:
        raise unprocessable(f"grant types are some of {', '.join(GRANT_TYPES)}")
    if "client_credentials" in grant_types and not confidential:
        raise unprocessable("client_credentials needs a confidential client")
    if "password" in grant_types and not first_party:
        raise unprocessable("the password grant is for first-party clients")
    client_id = new_client_id()
    if not audience and "authorization_code" in grant_types:
        audience = (client_id,)
    if not audience or any(not item or " " in item or len(item) > 200 for item in audience):
        raise unprocessable("a client needs at least one audience without spaces")
    if len(" ".join(audience)) > 500:
        raise unprocessable("a client's audiences take at most 500 characters together")
    check_permissions(allowed_scopes, tenant_id=tenant_id)
    check_grantable(allowed_scopes, held=held)
    if not set(default_scopes) <= set(allowed_scopes):
        raise unprocessable("default scopes must be allowed scopes")
    try:
        made = create_client(
            session,
            master,
            tenant_id=tenant_id,
            name=name[:200],
            grant_types=grant_types,
            audience=audience,
            allowed_scopes=allowed_scopes,
            default_scopes=default_scopes,
            first_party=first_party,
            confidential=confidential,
            client_id=client_id,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            backchannel_logout_uri=backchannel_logout_uri,
            id_token_signed_response_alg=id_token_signed_response_alg,
            jwks=jwks,
        )
    except ValueError as error:  # raised before anything is added to the session
        raise unprocessable(str(error)) from None
    after = describe_client(made.client)
    # What the row names already, or what ``confidential`` and ``jwks`` say (the auth method is
    # derived); the keys are public, but the log names them only.
    for key in ("id", "tenant", "created_at", "token_endpoint_auth_method"):
        after.pop(key)
    after["jwks"] = key_ids(made.client.jwks)
    record(
        session,
        "client.created",
        tenant_id=tenant_id,
        context=context,
        client_id=made.client.id,
        details={"after": after},
    )
    return made


def update_client(
    session: Session,
    client: Client,
    *,
    name: str | None = None,
    allowed_scopes: tuple[str, ...] | None = None,
    default_scopes: tuple[str, ...] | None = None,
    status: str | None = None,
    redirect_uris: tuple[str, ...] | None = None,
    post_logout_redirect_uris: tuple[str, ...] | None = None,
    backchannel_logout_uri: str | None = None,
    jwks: Mapping[str, Any] | str | bytes | None = None,
    cache: ClientCache | None = None,
    held: frozenset[str] | None = None,
    context: Context | None = None,
) -> dict[str, Any]:
    """Rename a client, change its scopes or its URIs, or disable (``status="disabled"``) or
    enable it. ``None`` leaves a field as it is; the URI lists are replaced whole, and an empty
    ``backchannel_logout_uri`` removes it. The URIs follow :func:`uri_problem` (a client of the
    authorization_code grant keeps a redirect URI). Audited with before and after of the
    changed fields; returns the changes. Allowing an ``admin:*`` scope the changer does not
    hold (``held``) is a 403.

    ``jwks`` replaces the JWK Set of a client of ``private_key_jwt`` (assertions signed by a
    key no longer in it are refused at once on this node, on others within the client cache's
    ttl); the audit row names the keys before and after by kid and thumbprint. How a client
    authenticates is chosen at registration: a client with a secret, or a public one, cannot
    be given keys."""
    allowed = client.allowed_scopes.split() if allowed_scopes is None else list(allowed_scopes)
    default = client.default_scopes.split() if default_scopes is None else list(default_scopes)
    check_permissions(allowed, tenant_id=client.tenant_id)
    check_grantable(set(allowed) - set(client.allowed_scopes.split()), held=held)
    if not set(default) <= set(allowed):
        raise unprocessable("default scopes must be allowed scopes")
    if status is not None and status not in ("active", "disabled"):
        raise unprocessable("status is active or disabled")
    keys = _wanted_jwks(client, jwks)
    wanted: dict[str, Any] = {
        "name": client.name if name is None else name[:200],
        "allowed_scopes": " ".join(dict.fromkeys(allowed)),
        "default_scopes": " ".join(dict.fromkeys(default)),
        "status": client.status if status is None else status,
        **_wanted_uris(client, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri),
        **keys,
    }
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in wanted.items():
        if getattr(client, field) != value:
            before[field], after[field] = getattr(client, field), value
            setattr(client, field, value)
    if "jwks" in after:  # public keys, but the log names them only
        before["jwks"], after["jwks"] = key_ids(before["jwks"]), key_ids(after["jwks"])
    if after:
        session.flush()
        _changed(session, client, cache)
        record(
            session,
            "client.updated",
            tenant_id=client.tenant_id,
            context=context,
            client_id=client.id,
            details={"before": before, "after": after},
        )
    return after


def _wanted_jwks(client: Client, jwks: Mapping[str, Any] | str | bytes | None) -> dict[str, str]:
    """The JWK Set column of ``client`` as asked, checked; none when it is not to change."""
    if jwks is None:
        return {}
    if client.jwks is None:
        raise unprocessable(
            "only a client of private_key_jwt has a JWK Set (how a client authenticates is"
            " chosen at registration)"
        )
    try:
        return {"jwks": check_jwks(jwks)}
    except ValueError as error:
        raise unprocessable(str(error)) from None


def _wanted_uris(
    client: Client,
    redirect_uris: tuple[str, ...] | None,
    post_logout_redirect_uris: tuple[str, ...] | None,
    backchannel_logout_uri: str | None,
) -> dict[str, str | None]:
    """The URI columns of ``client`` as asked (``None``: as they are), checked together; none
    when no URI is to change (so a client can always be renamed or disabled)."""
    if (
        redirect_uris is None
        and post_logout_redirect_uris is None
        and backchannel_logout_uri is None
    ):
        return {}
    redirect = _uris(client.redirect_uris, redirect_uris)
    post_logout = _uris(client.post_logout_redirect_uris, post_logout_redirect_uris)
    backchannel = (
        client.backchannel_logout_uri
        if backchannel_logout_uri is None
        else backchannel_logout_uri or None
    )
    problem = uri_problem(client.grant_types.split(), redirect, post_logout, backchannel)
    if problem is not None:
        raise unprocessable(problem)
    return {
        "redirect_uris": " ".join(redirect),
        "post_logout_redirect_uris": " ".join(post_logout),
        "backchannel_logout_uri": backchannel,
    }


def _uris(stored: str, wanted: tuple[str, ...] | None) -> tuple[str, ...]:
    """The URIs wanted, once each in order, or the ``stored`` ones when ``wanted`` is ``None``."""
    return tuple(dict.fromkeys(stored.split() if wanted is None else wanted))


def _changed(session: Session, client: Client, cache: ClientCache | None) -> None:
    if cache is not None:
        cache.forget(client.id)
        after_commit(session, lambda: cache.forget(client.id))
