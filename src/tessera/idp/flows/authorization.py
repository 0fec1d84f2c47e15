"""The authorization endpoint's decisions (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2, RFC 9700):
read an authorization request, then — given the browser's provider session — say what comes
next: a sign-in, a consent, or the code to send back.

A request is checked in the order that decides where an error may go: the client and its
redirect URI first (an error there is shown at the provider, never sent to a URI nobody
registered), then everything else (sent back to the client, with ``state`` and ``iss``).

While the person signs in and consents, the request travels in the pages' forms sealed by the
master key (:meth:`Asked.sealed`), and is checked again from its parameters at every step: a
disabled client or a redirect URI removed meanwhile stops it there.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import ClauseElement, Table, and_, bindparam, select
from sqlalchemy.orm import Session

from tessera import jose

from ..errors import OAuthError
from ..provider import Provider
from ..services import consents, sealed_forms
from ..services.accounts import status_at
from ..services.authorization_codes import CodeGrant
from ..services.browser_sessions import joining, touch_due, touching
from ..services.id_tokens import ID_TOKEN_ALGS, OPENID_SCOPES
from ..services.pkce import challenge_problem
from ..services.rbac import access_columns, access_from, access_of
from ..services.redirect_uris import matches
from ..store import prepared
from ..store.models import (
    ID_LENGTH,
    NONCE_LENGTH,
    BrowserSession,
    Client,
    Consent,
    SessionClient,
    User,
)
from .code_grant import user_scope
from .user_tokens import audience_for

RESPONSE_MODES = ("query", "form_post")
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
# acr_values this provider can satisfy: "mfa", a second factor (TOTP or a recovery code).
MFA = "mfa"
ACR_VALUES = (MFA,)
# What a person may take to sign in and consent before the sealed request must start over.
INTERACTION_TTL = 3600
MAX_STATE = 2000
MAX_HINT = 200
MAX_SCOPE = 2000
PURPOSE = "authorize"  # of the sealed request in the pages' forms


class BadAuthorizationRequest(Exception):
    """A request that cannot be answered at its redirect URI (unknown client, redirect URI not
    registered): the provider shows the reason on its own error page."""


@dataclass(frozen=True, slots=True)
class Back:
    """Where and how an answer goes back to the client."""

    redirect_uri: str
    response_mode: str
    state: str | None


class AuthorizationError(OAuthError):
    """An error sent back to the client's redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, back: Back, error: str, description: str) -> None:
        super().__init__(error, description)
        self.back = back


@dataclass(frozen=True, slots=True)
class Asked:
    """A checked authorization request.

    ``signed_in`` names the provider session that met the request's sign-in demands
    (``prompt=login``, ``max_age``) during this very request, so they are not asked again.
    """

    client: Client
    back: Back
    params: Mapping[str, str]
    scope: tuple[str, ...]
    code_challenge: str
    nonce: str | None
    prompt: frozenset[str]
    max_age: int | None
    acr_values: tuple[str, ...]
    login_hint: str | None
    hint_subject: str | None
    resource: str | None
    signed_in: str | None = None

    @property
    def wants_mfa(self) -> bool:
        """Whether the client asked for a second factor (``acr_values=mfa``)."""
        return MFA in self.acr_values

    def sealed(self, provider: Provider, now: int) -> str:
        """This request, for a page's form: encrypted and authenticated, valid for an hour."""
        values = {"params": dict(self.params), "signed_in": self.signed_in}
        return sealed_forms.seal(provider.master, PURPOSE, values, now=now, ttl=INTERACTION_TTL)

    def refuse(self, error: str, description: str) -> AuthorizationError:
        """An error for the client, sent back to its redirect URI."""
        return AuthorizationError(self.back, error, description)


def unseal(provider: Provider, sealed: str, now: int) -> Asked:
    """The request a page's form carried, checked again (:func:`read_request`)."""
    values = sealed_forms.unseal(provider.master, PURPOSE, sealed, now=now)
    if values is None or not isinstance(values.get("params"), dict):
        raise BadAuthorizationRequest(
            "this sign-in form expired or is not valid: go back to the application and start again"
        )
    asked = read_request(provider, values["params"], frozenset(), now)
    signed_in = values.get("signed_in")
    return replace(asked, signed_in=signed_in) if isinstance(signed_in, str) else asked


def read_request(
    provider: Provider,
    params: Mapping[str, str],
    repeated: Collection[str],
    now: int,
) -> Asked:
    """Check an authorization request's parameters (``repeated``: the names sent twice).

    Raises :class:`BadAuthorizationRequest` while there is nowhere safe to answer, and
    :class:`AuthorizationError` once there is.
    """
    client, redirect_uri = _client_and_redirect(provider, params, repeated)
    mode = params.get("response_mode", "query")
    state = params.get("state")
    back = Back(redirect_uri, mode if mode in RESPONSE_MODES else "query", state)
    if state is not None and len(state) > MAX_STATE:
        raise AuthorizationError(replace(back, state=None), "invalid_request", "state too long")
    if repeated:
        raise AuthorizationError(back, "invalid_request", f"{sorted(repeated)[0]} repeated")
    if mode not in RESPONSE_MODES:
        raise AuthorizationError(back, "invalid_request", "response_mode is query or form_post")
    _refuse_unsupported(back, params)
    if params.get("response_type") != "code":
        raise AuthorizationError(back, "unsupported_response_type", "response_type is code")
    if "authorization_code" not in client.grant_types.split():
        raise AuthorizationError(
            back, "unauthorized_client", "this client may not use the authorization code flow"
        )
    problem = challenge_problem(params.get("code_challenge"), params.get("code_challenge_method"))
    if problem is not None:
        raise AuthorizationError(back, "invalid_request", problem)
    prompt = frozenset(params.get("prompt", "").split())
    if not prompt <= PROMPTS:
        raise AuthorizationError(
            back, "invalid_request", "prompt is none, login, consent or select_account"
        )
    if "none" in prompt and len(prompt) > 1:
        raise AuthorizationError(back, "invalid_request", "prompt=none stands alone")
    nonce = params.get("nonce")
    if nonce is not None and len(nonce) > NONCE_LENGTH:
        raise AuthorizationError(back, "invalid_request", "nonce too long")
    login_hint = params.get("login_hint")
    if login_hint is not None and len(login_hint) > MAX_HINT:
        login_hint = None  # a hint, not a demand: one that cannot be a username is dropped
    resource = params.get("resource")
    try:
        audience_for(client, resource)
    except OAuthError as error:
        raise AuthorizationError(back, error.error, error.description) from None
    return Asked(
        client=client,
        back=back,
        params=params,
        scope=_requested_scope(back, client, params.get("scope")),
        code_challenge=params["code_challenge"],
        nonce=nonce,
        prompt=prompt,
        max_age=_max_age(back, params.get("max_age")),
        acr_values=tuple(params.get("acr_values", "").split()),
        login_hint=login_hint,
        hint_subject=_hint_subject(provider, back, client, params.get("id_token_hint"), now),
        resource=resource,
    )


def _client_and_redirect(
    provider: Provider, params: Mapping[str, str], repeated: Collection[str]
) -> tuple[Client, str]:
    if "client_id" in repeated or "redirect_uri" in repeated:
        raise BadAuthorizationRequest("client_id and redirect_uri are each sent once")
    client_id = params.get("client_id")
    if not client_id:
        raise BadAuthorizationRequest("the request names no client (client_id)")
    # From the client cache, as the token endpoint reads it: a change made on this node is
    # seen at once, one made on another node within client_cache_ttl seconds.
    client = (
        provider.clients.get(provider.database, client_id) if len(client_id) <= ID_LENGTH else None
    )
    if client is None or client.status != "active":
        raise BadAuthorizationRequest("the application that sent you here is not known")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise BadAuthorizationRequest("the request names no redirect_uri")
    if not matches(redirect_uri, client.redirect_uris.split()):
        raise BadAuthorizationRequest(
            "the redirect_uri is not one the application registered with this provider"
        )
    return client, redirect_uri


_UNSUPPORTED = {
    "request": "request_not_supported",
    "request_uri": "request_uri_not_supported",
    "registration": "registration_not_supported",
}


def _refuse_unsupported(back: Back, params: Mapping[str, str]) -> None:
    for name, error in _UNSUPPORTED.items():
        if name in params:
            raise AuthorizationError(back, error, f"the {name} parameter is not supported")


def _requested_scope(back: Back, client: Client, requested: str | None) -> tuple[str, ...]:
    """The OpenID scopes and the client's allowed API scopes of what was asked (or the client's
    default scopes); ``offline_access`` only for a client that may refresh."""
    if requested is None or not requested.strip():
        requested = client.default_scopes
    if len(requested) > MAX_SCOPE:
        raise AuthorizationError(back, "invalid_scope", "scope too long")
    allowed = set(client.allowed_scopes.split()) | set(OPENID_SCOPES)
    if "refresh_token" not in client.grant_types.split():
        allowed.discard("offline_access")
    scope = tuple(name for name in dict.fromkeys(requested.split()) if name in allowed)
    if not scope:
        raise AuthorizationError(back, "invalid_scope", "none of the requested scopes is allowed")
    return scope


def _max_age(back: Back, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 10:
        raise AuthorizationError(back, "invalid_request", "max_age is a number of seconds")
    return int(value)


def _hint_subject(
    provider: Provider, back: Back, client: Client, hint: str | None, now: int
) -> str | None:
    """The ``sub`` of an ID token this provider issued to ``client`` (expired is fine: it only
    says whom the client expects)."""
    if hint is None:
        return None
    claims = read_id_token_hint(provider, hint, now)
    if claims is None or client.id not in audiences_of(claims):
        raise AuthorizationError(back, "invalid_request", "id_token_hint is not valid")
    subject = claims["sub"]
    return subject if isinstance(subject, str) else None


def read_id_token_hint(provider: Provider, hint: str, now: int) -> dict[str, object] | None:
    """The claims of an ID token signed by this provider, expired or not (up to a session's
    lifetime ago); ``None`` when it is not one."""
    verifier = jose.Verifier(
        provider.keyring.key_set(now),
        algorithms=ID_TOKEN_ALGS,
        issuer=provider.settings.issuer,
        audience=jose.ANY_AUDIENCE,
        leeway=provider.settings.session_ttl,
        require=("sub", "aud"),
    )
    try:
        return verifier.verify(hint, now=now)
    except jose.JoseError:
        return None


def audiences_of(claims: Mapping[str, object]) -> tuple[str, ...]:
    """The ``aud`` of a token's claims, as a tuple (one string, or a list of them).

    >>> audiences_of({"aud": "a"}), audiences_of({"aud": ["a", "b"]}), audiences_of({})
    (('a',), ('a', 'b'), ())
    """
    audience = claims.get("aud")
    if isinstance(audience, str):
        return (audience,)
    if isinstance(audience, list):
        return tuple(item for item in audience if isinstance(item, str))
    return ()


# What comes next for a request.


@dataclass(frozen=True, slots=True)
class SignInNeeded:
    """The person must sign in; ``why`` (shown on the page) says why again, if it is again."""

    why: str = ""


@dataclass(frozen=True, slots=True)
class ConsentNeeded:
    """A third-party client asks for ``scope``, which the person (``user``, signed in with the
    provider session ``session_id``) has not allowed it yet."""

    user: Person
    session_id: str
    scope: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Granted:
    """The answer for the client's redirect URI: ``code``, ``state``, ``iss``."""

    answer: dict[str, str]


Next = SignInNeeded | ConsentNeeded | Granted


@dataclass(frozen=True, slots=True)
class Person:
    """The user a live provider session signs in, as the authorization steps need them."""

    id: str
    tenant_id: str
    username: str


# Read by signed_in_user: a prepared read, outside the request's transaction.
_PERSON = select(User.tenant_id, User.username, User.status, User.locked_until).where(
    User.id == bindparam("id")
)
_SESSIONS = cast(Table, BrowserSession.__table__)
_SESSION_COLUMNS = tuple(column.key for column in _SESSIONS.c)
# An SSO hop's one read: the browser session its cookie names, the session's user, and whether
# the client took part in the session already; for a third-party client, the person's consent
# to it and their access too.
_HOP = (
    select(
        *_SESSIONS.c,
        User.tenant_id.label("user_tenant_id"),
        User.username,
        User.status,
        User.locked_until,
        SessionClient.first_at.is_not(None).label("joined"),
    )
    .select_from(_SESSIONS)
    .join(User, User.id == _SESSIONS.c.user_id)
    .outerjoin(
        SessionClient,
        and_(
            SessionClient.session_id == _SESSIONS.c.id,
            SessionClient.client_id == bindparam("client"),
        ),
    )
    .where(_SESSIONS.c.token_hash == bindparam("digest"))
)
_ROLE_NAMES, _PERMISSIONS = access_columns(User.id)
_HOP_THIRD_PARTY = _HOP.add_columns(
    Consent.scope.label("consented"),
    _ROLE_NAMES.label("role_names"),
    _PERMISSIONS.label("permissions"),
).outerjoin(Consent, and_(Consent.user_id == User.id, Consent.client_id == bindparam("client")))


def signed_in_user(
    provider: Provider, client: Client, row: BrowserSession | None, now: int
) -> tuple[BrowserSession, Person] | None:
    """The session's user, if the session may sign in to ``client``: a user of the client's
    tenant, still active. A person of another tenant is not signed in here."""
    if row is None or row.tenant_id != client.tenant_id:
        return None  # another tenant's session: not read further
    found = provider.database.first(_PERSON, {"id": row.user_id})
    if found is None:
        return None
    return _signed_in(
        client, row, found.tenant_id, found.username, found.status, found.locked_until, now
    )


def _signed_in(
    client: Client,
    row: BrowserSession,
    tenant_id: str,
    username: str,
    status: str,
    locked_until: int | None,
    now: int,
) -> tuple[BrowserSession, Person] | None:
    """The session ``row`` and its user, if they may sign in to ``client``: of its tenant,
    and active at ``now``."""
    if row.tenant_id != client.tenant_id or status_at(status, locked_until, now) != "active":
        return None
    return row, Person(row.user_id, tenant_id, username)


def next_step(
    provider: Provider,
    session: Session,
    asked: Asked,
    row: BrowserSession | None,
    *,
    consented: bool = False,
    now: int,
) -> Next:
    """What the request needs now, given the browser's live provider session ``row``; with
    ``consented``, the person has just allowed what is asked (remembered here). ``prompt=none``
    refuses what would need a page (``login_required``, ``consent_required``)."""
    current = signed_in_user(provider, asked.client, row, now)
    sign_in = _sign_in_step(asked, current, now)
    if sign_in is not None:
        return sign_in
    assert current is not None
    row, user = current
    # A first-party client shows the person nothing: the code carries what was asked, and
    # its redemption keeps of it what the user's roles permit then (code_grant.user_scope).
    asks_nothing = asked.client.first_party and not consented
    scope = _scope(asked, None if asks_nothing else access_of(session, user.id).permissions)
    if consented:
        consents.remember(
            session,
            tenant_id=user.tenant_id,
            user_id=user.id,
            client_id=asked.client.id,
            scopes=scope,
            now=now,
        )
    elif not asked.client.first_party:
        remembered = consents.remembered(session, user.id, asked.client.id)
        consent = _consent_step(asked, row, user, scope, remembered)
        if consent is not None:
            return consent
    return Granted(grant(provider, session, asked, row, scope, now))


async def sso_hop(provider: Provider, asked: Asked, cookie: str | None, now: int) -> Next:
    """:func:`next_step` for a request that brings no form, only the browser's session
    ``cookie`` (``/oauth2/authorize`` itself), on the event loop: one read (:data:`_HOP`),
    the same decisions, and the code with the session's notes written in one transaction
    (``Database.write_all``) — nothing when the request goes on to a page or is refused."""
    database = provider.database
    third_party = not asked.client.first_party
    digest = provider.sessions.digest(cookie)
    found = None
    if digest is not None:
        found = await database.read(
            _HOP_THIRD_PARTY if third_party else _HOP,
            {"digest": digest, "client": asked.client.id},
        )
    writes: list[tuple[ClauseElement, dict[str, Any]]] = []
    current = None
    if found is not None:
        row = prepared.detached(BrowserSession, found, _SESSION_COLUMNS)
        if provider.sessions.alive(row, now):
            if touch_due(row, now):
                writes.append(touching(row, now=now))
            current = _signed_in(
                asked.client,
                row,
                found.user_tenant_id,
                found.username,
                found.status,
                found.locked_until,
                now,
            )
    step: Next | None = _sign_in_step(asked, current, now)
    if step is None:
        assert current is not None and found is not None
        row, user = current
        permissions = access_from(found.role_names, found.permissions) if third_party else None
        scope = _scope(asked, None if permissions is None else permissions.permissions)
        if third_party:
            step = _consent_step(asked, row, user, scope, found.consented)
        if step is None:
            code, stored = provider.codes.issuing(_code_grant(asked, row, scope), now=now)
            writes.append(stored)
            if not found.joined:
                dialect = database.engine.dialect.name
                writes.append(joining(row, asked.client.id, now=now, dialect=dialect))
            step = Granted(answer_params(provider, asked.back, {"code": code}))
    if writes:
        await database.write_all(writes)
    return step


def _sign_in_step(
    asked: Asked, current: tuple[BrowserSession, Person] | None, now: int
) -> SignInNeeded | None:
    why = _sign_in_due(asked, current, now)
    if why is None:
        return None
    if "none" in asked.prompt:
        raise asked.refuse("login_required", why or "the person is not signed in")
    return SignInNeeded(why)


def _scope(asked: Asked, permissions: frozenset[str] | None) -> tuple[str, ...]:
    """What the code carries of the asked scope: all of it, or (``permissions``) what the
    user's roles permit."""
    scope = asked.scope if permissions is None else user_scope(asked.scope, permissions)
    if not scope:
        raise asked.refuse("invalid_scope", "none of the requested scopes is permitted")
    return scope


def _consent_step(
    asked: Asked,
    row: BrowserSession,
    user: Person,
    scope: tuple[str, ...],
    remembered: str | None,
) -> ConsentNeeded | None:
    if "consent" in asked.prompt and asked.signed_in != row.id:
        remembered = None
    if not consents.needs_asking(scope, remembered):
        return None
    if "none" in asked.prompt:
        raise asked.refuse("consent_required", "the application needs your consent")
    return ConsentNeeded(user, row.id, scope)


def _sign_in_due(
    asked: Asked, current: tuple[BrowserSession, Person] | None, now: int
) -> str | None:
    if current is None:
        return ""
    row, _ = current
    if asked.signed_in != row.id:
        if asked.prompt & {"login", "select_account"}:
            return "The application asks you to sign in again."
        # max_age=0 asks for a sign-in now, whatever the session's age (as prompt=login).
        if asked.max_age is not None and (
            asked.max_age == 0 or now - row.auth_time > asked.max_age
        ):
            return "Your sign-in is too old for this application: sign in again."
    if asked.hint_subject is not None and asked.hint_subject != row.user_id:
        return "The application expects another account: sign in with it."
    if asked.wants_mfa and "otp" not in row.amr.split():
        if asked.signed_in == row.id:
            raise asked.refuse("access_denied", "the second factor was not given")
        return "The application asks for your second factor: sign in with it."
    return None


def grant(
    provider: Provider,
    session: Session,
    asked: Asked,
    row: BrowserSession,
    scope: tuple[str, ...],
    now: int,
) -> dict[str, str]:
    """Issue the code of ``asked`` for the session ``row``'s user; the answer's parameters.
    The client is noted as part of the session (its logout will be told)."""
    code = provider.codes.issue(session, _code_grant(asked, row, scope), now=now)
    provider.sessions.joined(session, row, asked.client.id, now=now)
    return answer_params(provider, asked.back, {"code": code})


def _code_grant(asked: Asked, row: BrowserSession, scope: tuple[str, ...]) -> CodeGrant:
    return CodeGrant(
        tenant_id=row.tenant_id,
        client_id=asked.client.id,
        user_id=row.user_id,
        redirect_uri=asked.back.redirect_uri,
        scope=" ".join(scope),
        code_challenge=asked.code_challenge,
        auth_time=row.auth_time,
        amr=row.amr,
        acr=row.acr,
        nonce=asked.nonce,
        resource=asked.resource,
        session_id=row.id,
    )


def answer_params(provider: Provider, back: Back, params: dict[str, str]) -> dict[str, str]:
    """``params`` with the request's ``state`` and the issuer (RFC 9207) added."""
    answer = dict(params)
    if back.state is not None:
        answer["state"] = back.state
    answer["iss"] = provider.settings.issuer
    return answer
