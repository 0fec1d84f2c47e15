"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and what every end of a provider
session does: the session row ends, the refresh families it gave are revoked, and the clients
that took part in it are told by back-channel (after the transaction commits).

A logout request with a valid ``id_token_hint`` of the signed-in session logs out at once;
without one, the person confirms on a page first — a link on another site cannot log anyone
out (logout CSRF). ``post_logout_redirect_uri`` must be one the client registered, exactly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..provider import Provider
from ..services import sealed_forms
from ..services.audit import Context, record
from ..services.backchannel import Delivery
from ..services.redirect_uris import matches
from ..store.database import after_commit
from ..store.models import ID_LENGTH, BrowserSession, Client, SessionClient
from .authorization import MAX_STATE, audiences_of, read_id_token_hint

PURPOSE = "logout"
CONFIRMATION_TTL = 600


class BadLogoutRequest(Exception):
    """A logout request that cannot be followed (shown on the provider's error page)."""


@dataclass(frozen=True, slots=True)
class LogoutAsked:
    """A checked logout request: the client it names (if any), where to go afterwards, and the
    claims of its ``id_token_hint`` (if valid)."""

    params: Mapping[str, str]
    client: Client | None
    post_logout_redirect_uri: str | None
    state: str | None
    hint: Mapping[str, Any] | None

    def sealed(self, provider: Provider, now: int) -> str:
        """This request, for the confirmation page's form."""
        return sealed_forms.seal(
            provider.master, PURPOSE, dict(self.params), now=now, ttl=CONFIRMATION_TTL
        )

    def needs_confirmation(self, row: BrowserSession | None) -> bool:
        """Whether the person must confirm: there is a session to end and the request does not
        prove (by an ID token of that session) that its client asks."""
        if row is None:
            return False
        if self.hint is None:
            return True
        sid = self.hint.get("sid")
        if isinstance(sid, str):
            return sid != row.id
        return self.hint.get("sub") != row.user_id


def read_logout_request(
    provider: Provider,
    params: Mapping[str, str],
    repeated: Collection[str],
    now: int,
) -> LogoutAsked:
    """Check a logout request's parameters, or raise :class:`BadLogoutRequest`."""
    if repeated:
        raise BadLogoutRequest("a parameter of the logout request is repeated")
    hint: Mapping[str, Any] | None = None
    client_id = params.get("client_id")
    if "id_token_hint" in params:
        hint = read_id_token_hint(provider, params["id_token_hint"], now)
        if hint is None:
            raise BadLogoutRequest("the id_token_hint is not an ID token of this provider")
        audiences = audiences_of(hint)
        if client_id is None and len(audiences) == 1:
            client_id = audiences[0]
        elif client_id not in audiences:
            raise BadLogoutRequest("the id_token_hint was not issued to this client")
    client = _client(provider, client_id)
    uri = params.get("post_logout_redirect_uri")
    if uri is not None:
        if client is None:
            raise BadLogoutRequest("post_logout_redirect_uri needs client_id or id_token_hint")
        if not matches(uri, client.post_logout_redirect_uris.split()):
            raise BadLogoutRequest(
                "the post_logout_redirect_uri is not one the application registered"
            )
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE:
        raise BadLogoutRequest("state too long")
    return LogoutAsked(params, client, uri, state, hint)


def unseal_logout(provider: Provider, sealed: str, now: int) -> LogoutAsked:
    """The request the confirmation page carried, checked again."""
    params = sealed_forms.unseal(provider.master, PURPOSE, sealed, now=now)
    if params is None:
        raise BadLogoutRequest("this page expired: go back to the application and log out again")
    return read_logout_request(provider, params, (), now)


def _client(provider: Provider, client_id: str | None) -> Client | None:
    if client_id is None:
        return None
    client = (
        provider.clients.get(provider.database, client_id) if len(client_id) <= ID_LENGTH else None
    )
    if client is None or client.status != "active":
        raise BadLogoutRequest("the application that sent you here is not known")
    return client


def end_session(
    provider: Provider, session: Session, row: BrowserSession, context: Context, now: int
) -> None:
    """Log ``row`` out: end it, revoke the refresh families it gave, and tell its clients by
    back-channel once this transaction commits."""
    provider.sessions.end(session, row, now=now)
    families = provider.refresh.revoke_session(session, row.id, now)
    deliveries = backchannel_deliveries(provider, session, [row], now)
    record(
        session,
        "logout",
        tenant_id=row.tenant_id,
        context=context,
        subject=row.user_id,
        details={
            "session": row.id,
            "families": families,
            "backchannel": sorted(delivery.client_id for delivery in deliveries),
        },
        at=now,
    )
    notify_after_commit(provider, session, deliveries)


def backchannel_deliveries(
    provider: Provider, session: Session, rows: Iterable[BrowserSession], now: int
) -> list[Delivery]:
    """A logout token for each client with a back-channel logout URI that took part in one of
    the sessions ``rows``."""
    by_id = {row.id: row for row in rows}
    if not by_id:
        return []
    found = session.execute(
        select(SessionClient.session_id, Client)
        .join(Client, Client.id == SessionClient.client_id)
        .where(SessionClient.session_id.in_(by_id), Client.backchannel_logout_uri.is_not(None))
    ).all()
    deliveries = []
    for session_id, client in found:
        row, uri = by_id[session_id], client.backchannel_logout_uri
        if uri is None:  # filtered out by the query; this tells the type checker
            continue
        token = provider.backchannel.logout_token(
            client_id=client.id,
            alg=client.id_token_signed_response_alg,
            subject=row.user_id,
            session_id=row.id,
            now=now,
            session=session,
        )
        deliveries.append(Delivery(row.tenant_id, client.id, uri, token, row.user_id, row.id))
    return deliveries


def notify_after_commit(provider: Provider, session: Session, deliveries: list[Delivery]) -> None:
    """Send ``deliveries`` once the caller's transaction has committed (never if it fails)."""
    if deliveries:
        after_commit(session, lambda: provider.backchannel.send(deliveries))
