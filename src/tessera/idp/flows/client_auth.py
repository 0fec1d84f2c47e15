"""Who is calling: client authentication at the token, revocation and introspection endpoints.

A client authenticates in exactly one way (RFC 6749 §2.3): ``client_secret_basic`` (HTTP Basic),
``client_secret_post`` (``client_id`` and ``client_secret`` in the form), ``private_key_jwt``
(``client_assertion_type`` and ``client_assertion``, RFC 7523 §2.2), or, a public client, by its
``client_id`` alone (``none``). Two ways at once are an ``invalid_request``; everything else
that fails is the same ``invalid_client``.

An assertion is verified, then its ``jti`` is spent in a transaction of its own that commits
before the endpoint does anything else: an assertion is used once, whatever the answer to the
request it came with.

>>> from tessera.idp.config import Settings
>>> from tessera.idp.provider import Provider
>>> provider = Provider(Settings(database_url="sqlite://", master_key="A" * 43))
>>> client_from_request(provider, {"client_assertion": "x.y.z"}, ("demo", "secret"))
Traceback (most recent call last):
...
tessera.idp.errors.OAuthError: invalid_request: use one client authentication method
>>> provider.close()
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..errors import OAuthError, invalid_client, invalid_request
from ..provider import Provider
from ..services.client_assertions import JWT_BEARER, claimed_client, spend
from ..services.clients import check_credentials
from ..store.models import Client


def client_from_request(
    provider: Provider,
    form: Mapping[str, str],
    basic: tuple[str, str] | None,
    *,
    now: float | None = None,
) -> Client:
    """The client that sent ``form`` (and the HTTP Basic credentials ``basic``), authenticated
    (detached from any session: read its columns only). ``now`` judges an assertion's times."""
    if asserts(form):
        if basic is not None or "client_secret" in form:
            raise invalid_request("use one client authentication method")
        return _by_assertion(
            provider,
            form,
            form.get("client_assertion_type"),
            form.get("client_assertion"),
            time.time() if now is None else now,
        )
    client_id, secret = _secret_credentials(form, basic)
    client = provider.clients.get(provider.database, client_id) if len(client_id) <= 64 else None
    return check_credentials(provider.master, client, secret)


async def client_on_the_loop(
    provider: Provider, form: Mapping[str, str], basic: tuple[str, str] | None
) -> Client:
    """:func:`client_from_request` for a request that carries no assertion (an assertion is
    spent: a write, for a worker thread), awaited on the event loop: the client is read with
    ``Database.read`` when it is not in the cache."""
    if asserts(form):
        raise invalid_request("a client assertion is not accepted here")
    client_id, secret = _secret_credentials(form, basic)
    client = (
        await provider.clients.read(provider.database, client_id) if len(client_id) <= 64 else None
    )
    return check_credentials(provider.master, client, secret)


def asserts(form: Mapping[str, str]) -> bool:
    """Whether the client authenticates with an assertion (RFC 7523), or tries to: checked,
    and spent, by :func:`client_from_request` (a write: on a worker thread).

    >>> asserts({"client_assertion_type": "x"}), asserts({"client_id": "a"})
    (True, False)
    """
    return "client_assertion" in form or "client_assertion_type" in form


def _secret_credentials(
    form: Mapping[str, str], basic: tuple[str, str] | None
) -> tuple[str, str | None]:
    """The client id and secret (none: a public client) of HTTP Basic or of the form."""
    if basic is not None:
        if "client_secret" in form:
            raise invalid_request("use one client authentication method")
        if form.get("client_id", basic[0]) != basic[0]:
            raise invalid_request("client_id does not match the authenticated client")
        return basic
    client_id = form.get("client_id", "")
    if not client_id:
        raise OAuthError("invalid_client", "client authentication required")
    return client_id, form.get("client_secret")


def _by_assertion(
    provider: Provider,
    form: Mapping[str, str],
    assertion_type: str | None,
    assertion: str | None,
    now: float,
) -> Client:
    """``private_key_jwt``: the client whose key signed ``assertion``, which is spent."""
    if assertion_type != JWT_BEARER or assertion is None:
        raise invalid_client()
    client_id = claimed_client(assertion)
    if form.get("client_id", client_id) != client_id:
        raise invalid_client()
    client = provider.clients.get(provider.database, client_id)
    if client is None or client.status != "active":
        raise invalid_client()
    verified = provider.client_assertions.verify(client, assertion, now=now)
    with provider.database.session() as session:
        spend(session, verified)
    return client
