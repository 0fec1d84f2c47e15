"""The ``authorization_code`` grant (RFC 6749 §4.1.3 with PKCE, OpenID Connect Core §3.1.3):
a code redeemed once, by the client it was issued to, with the redirect URI and PKCE verifier of
its request, for an access token, an ID token (``openid`` scope) and a refresh token (the
``offline_access`` scope, or a client allowed the refresh grant).

A code presented again revokes what it gave (RFC 6749 §4.1.2): the refresh family and the
access token. The refusal is returned, not raised, so that revocation commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import ClauseElement, Insert, Table, bindparam, select
from sqlalchemy.orm import Session

from ..errors import invalid_request
from ..provider import Provider
from ..services.accounts import status_at
from ..services.audit import INSERT as AUDIT_INSERT
from ..services.audit import Context, heard, record
from ..services.audit import row as audit_row
from ..services.authorization_codes import CLAIMED, MAX_CODE_LENGTH, CodeRefused
from ..services.id_tokens import OPENID_SCOPES, SignIn
from ..services.pkce import verifies
from ..services.rbac import Access, access_columns, access_from, permitted_scope
from ..services.refresh import Refused
from ..store import prepared
from ..store.models import AuthorizationCode, Client, RefreshFamily, User
from .user_tokens import Someone, UserTokens, audience_for, user_tokens

# The user a code was issued for, and their roles now: one prepared read, outside the
# redemption's transaction (it is on every code redemption's path).
_ROLE_NAMES, _PERMISSIONS = access_columns(User.id)
_USER = select(
    User.id,
    User.tenant_id,
    User.status,
    User.locked_until,
    _ROLE_NAMES.label("role_names"),
    _PERMISSIONS.label("permissions"),
).where(User.id == bindparam("id"))


def user_scope(asked: tuple[str, ...], permissions: frozenset[str]) -> tuple[str, ...]:
    """What a user's token may carry of ``asked``: the OpenID scopes, and the API scopes the
    user's roles permit now (a permission lost since the grant is dropped).

    >>> user_scope(("openid", "read", "write"), frozenset({"read"}))
    ('openid', 'read')
    """
    openid = tuple(scope for scope in asked if scope in OPENID_SCOPES)
    api = tuple(scope for scope in asked if scope not in OPENID_SCOPES)
    return openid + permitted_scope(api, permissions)


def redeem_code(
    provider: Provider,
    session: Session,
    client: Client,
    code: str,
    redirect_uri: str | None,
    verifier: str | None,
    context: Context,
    now: int,
) -> dict[str, Any] | Refused:
    """The token answer for ``code``, or why not (a replay revoked what the code gave)."""
    redeemed = provider.codes.redeem(
        session, code, client_id=client.id, redirect_uri=redirect_uri, verifier=verifier, now=now
    )
    if isinstance(redeemed, CodeRefused):
        if redeemed.replayed is not None:
            _revoke_what_it_gave(provider, session, client, redeemed.replayed, context, now)
            return Refused(redeemed.reason, audited=True)
        record(
            session,
            "code.refused",
            tenant_id=client.tenant_id,
            outcome="failure",
            context=context,
            client_id=client.id,
            details={"reason": redeemed.reason},
        )
        return Refused(redeemed.reason)
    user = provider.database.first(_USER, {"id": redeemed.user_id})
    if user is None or status_at(user.status, user.locked_until, now) != "active":
        return Refused("the user is no longer active")
    access = access_from(user.role_names, user.permissions)
    return _tokens(provider, session, client, user, access, redeemed, context, now)


def _tokens(
    provider: Provider,
    session: Session,
    client: Client,
    user: Someone,
    access: Access,
    code: AuthorizationCode,
    context: Context,
    now: int,
) -> dict[str, Any]:
    minted, scope = _minted(provider, client, user, access, code, now, session)
    prepared.run_all(session, minted.writes)
    provider.codes.issued(session, code, family_id=minted.family_id, jti=minted.jti)
    record(session, "token.issued", context=context, **_issued(client, user, minted, scope))
    return minted.answer


class GrantedCode(Protocol):
    """What a redeemed code granted, as the tokens need it: a stored ``AuthorizationCode``,
    or the row the event loop's redemption read of one."""

    @property
    def scope(self) -> str: ...
    @property
    def amr(self) -> str: ...
    @property
    def acr(self) -> str: ...
    @property
    def auth_time(self) -> int: ...
    @property
    def nonce(self) -> str | None: ...
    @property
    def resource(self) -> str | None: ...
    @property
    def session_id(self) -> str | None: ...


def _minted(
    provider: Provider,
    client: Client,
    user: Someone,
    access: Access,
    code: GrantedCode,
    now: int,
    session: Session | None,
) -> tuple[UserTokens, tuple[str, ...]]:
    """The tokens ``code`` gives now (the answer with its ID token, and the refresh family's
    statements), and their scope. ``session``: the transaction a first key of the ID token's
    algorithm may be made in (none: the caller knows there is one)."""
    scope = user_scope(tuple(code.scope.split()), access.permissions)
    amr = tuple(code.amr.split())
    minted = user_tokens(
        provider,
        client,
        user,
        access,
        scope=scope,
        audience=audience_for(client, code.resource),
        amr=amr,
        auth_time=code.auth_time,
        now=now,
        refresh="offline_access" in scope or "refresh_token" in client.grant_types.split(),
        session_id=code.session_id,
    )
    if "openid" in scope:
        sign_in = SignIn(user.id, code.auth_time, amr, code.acr, code.session_id)
        minted.answer["id_token"] = provider.id_tokens.issue(
            sign_in,
            client_id=client.id,
            alg=client.id_token_signed_response_alg,
            nonce=code.nonce,
            access_token=minted.access_token,
            now=now,
            session=session,
        )
    return minted, scope


def _issued(
    client: Client, user: Someone, minted: UserTokens, scope: tuple[str, ...]
) -> dict[str, Any]:
    """The ``token.issued`` audit row's fields."""
    return {
        "tenant_id": user.tenant_id,
        "subject": user.id,
        "client_id": client.id,
        "details": {
            "grant": "authorization_code",
            "jti": minted.jti,
            "family": minted.family_id,
            "scope": " ".join(scope),
        },
    }


# On the event loop: the code with its user's status and access now, read in one statement;
# then the claim (which notes what the code gives) and every write of the grant in one
# transaction, each INSERT made only if that very claim took the code (CLAIMED).
_CODES = cast(Table, AuthorizationCode.__table__)
_REDEEMABLE = (
    select(
        *_CODES.c,
        User.tenant_id.label("user_tenant_id"),
        User.status.label("user_status"),
        User.locked_until,
        _ROLE_NAMES.label("role_names"),
        _PERMISSIONS.label("permissions"),
    )
    .join(User, User.id == _CODES.c.user_id)
    .where(_CODES.c.code_hash == bindparam("digest"))
)


@dataclass(frozen=True, slots=True)
class _User:
    id: str
    tenant_id: str


async def redeem_on_the_loop(
    provider: Provider, client: Client, form: Mapping[str, str], context: Context, now: int
) -> dict[str, Any] | None:
    """The token answer for the code in ``form``, redeemed on the event loop: one read (the
    code, its user's status and access), the tokens, and one group-committed transaction
    (``Database.write_all``) that claims the code and writes the refresh family and the audit
    row only if that claim took it.

    ``None`` when the code is not redeemable as it stands — unknown, spent, expired, another
    client's, a redirect URI or verifier that does not match, a user no longer active, no
    key yet for the ID token's algorithm — or when another redemption claimed it first: the
    caller then runs :func:`redeem_code` on a worker thread, which refuses it as it must
    (spending it, revoking what it gave, auditing).
    """
    code = form.get("code")
    if not code:
        raise invalid_request("code is required")
    if len(code) > MAX_CODE_LENGTH:
        return None
    digest = provider.codes.digest(code)
    found = await provider.database.read(_REDEEMABLE, {"digest": digest})
    if (
        found is None
        or found.client_id != client.id
        or found.redeemed_at is not None
        or found.expires_at <= now
        or form.get("redirect_uri") != found.redirect_uri
        or not verifies(form.get("code_verifier"), found.code_challenge)
        or status_at(found.user_status, found.locked_until, now) != "active"
        or not provider.keyring.can_sign(client.id_token_signed_response_alg, now)
    ):
        return None
    user = _User(found.user_id, found.user_tenant_id)
    access = access_from(found.role_names, found.permissions)
    minted, scope = _minted(provider, client, user, access, found, now, None)
    claim, claimed_by_it = provider.codes.claim_noting(
        digest, client_id=client.id, now=now, family_id=minted.family_id, jti=minted.jti
    )
    audited = audit_row("token.issued", context=context, **_issued(client, user, minted, scope))
    writes: list[tuple[ClauseElement, Mapping[str, Any]]] = [
        claim,
        *(
            (prepared.only_if(cast(Insert, statement), values, CLAIMED), values | claimed_by_it)
            for statement, values in minted.writes
        ),
        (prepared.only_if(AUDIT_INSERT, audited, CLAIMED), audited | claimed_by_it),
    ]
    changed = await provider.database.write_all(writes)
    if changed[0] != 1:  # another redemption claimed it meanwhile
        return None
    heard(provider.database, "token.issued", "success")
    return minted.answer


def _revoke_what_it_gave(
    provider: Provider,
    session: Session,
    client: Client,
    code: AuthorizationCode,
    context: Context,
    now: int,
) -> None:
    revoked: dict[str, Any] = {"grant": "authorization_code"}
    if code.family_id is not None:
        family = session.get(RefreshFamily, code.family_id)
        if family is not None and family.revoked_at is None:
            provider.refresh.revoke_family(session, family, "code-replayed", now)
            revoked["family"] = family.id
    if code.access_jti is not None:
        provider.revocations.revoke_access_token(
            session,
            {
                "jti": code.access_jti,
                "exp": (code.redeemed_at or now) + provider.settings.access_token_ttl,
                "tenant": code.tenant_id,
            },
        )
        revoked["jti"] = code.access_jti
    record(
        session,
        "code.replayed",
        tenant_id=client.tenant_id,
        outcome="failure",
        context=context,
        subject=code.user_id,
        client_id=client.id,
        details=revoked,
    )
