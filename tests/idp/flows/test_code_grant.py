"""The authorization_code grant as a service, on SQLite and PostgreSQL: a code is redeemed once
for an access token, an ID token and (offline_access, or a client allowed refresh) a refresh
token; the refresh keeps the OpenID scopes and brings a new ID token; a replayed code revokes
what it gave; every refusal is invalid_grant and writes what it must."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tessera import jose
from tessera.idp.errors import OAuthError
from tessera.idp.flows.client_auth import client_on_the_loop
from tessera.idp.flows.grants import code_grant_on_the_loop, token_response
from tessera.idp.http.answers import oauth_status
from tessera.idp.provider import Provider
from tessera.idp.services.audit import Context
from tessera.idp.services.authorization_codes import CodeGrant
from tessera.idp.services.clients import create_client
from tessera.idp.services.id_tokens import at_hash
from tessera.idp.services.pkce import challenge_of
from tessera.idp.store.models import User

from ..conftest import (
    AUDIENCE,
    ISSUER,
    Registered,
    add_client,
    add_user,
    audit_events,
    run_together,
    set_user_status,
)

CONTEXT = Context(ip="203.0.113.7", user_agent="pytest")
REDIRECT = "https://app.example/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
NONCE = "n-0S6_WzA2Mj"


def code_client(
    provider: Provider,
    tenant: str,
    *,
    grants: tuple[str, ...] = ("authorization_code",),
    confidential: bool = True,
) -> Registered:
    return add_client(
        provider,
        tenant,
        grant_types=grants,
        allowed_scopes=("read", "write"),
        confidential=confidential,
        redirect_uris=(REDIRECT,),
    )


def code_for(provider: Provider, client: Registered, user: User, scope: str = "openid read") -> str:
    grant = CodeGrant(
        tenant_id=client.tenant_id,
        client_id=client.id,
        user_id=user.id,
        redirect_uri=REDIRECT,
        scope=scope,
        code_challenge=challenge_of(VERIFIER),
        auth_time=int(time.time()) - 20,
        amr="pwd otp",
        acr="mfa",
        nonce=NONCE,
        session_id="0b7c9a52-6f1e-4d2a-8c3b-9e4f5a6b7c8d",
    )
    with provider.database.session() as session:
        return provider.codes.issue(session, grant, now=int(time.time()))


@pytest.fixture(autouse=True, params=["thread", "loop"])
def path(request: pytest.FixtureRequest, provider: Provider) -> Iterator[str]:
    """Every test of this module twice: through ``token_response`` (a worker thread's
    transaction), and as the token endpoint redeems a code — on the event loop
    (``code_grant_on_the_loop``, once the ID tokens' key exists), handing to
    ``token_response`` what it does not redeem."""
    global PATH
    PATH = request.param
    if PATH == "loop":
        provider.keyring.signing_key(alg="RS256")
    yield PATH
    PATH = "thread"


PATH = "thread"


def redeem(provider: Provider, client: Registered, issued: str, **form: str) -> dict[str, Any]:
    fields = {
        "grant_type": "authorization_code",
        "code": issued,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        **form,
    }
    basic = client.basic if client.secret is not None else None
    if basic is None:
        fields["client_id"] = client.id
    if PATH == "thread":
        return token_response(provider, fields, basic, CONTEXT)

    async def on_the_loop() -> dict[str, Any]:
        try:
            found = await client_on_the_loop(provider, fields, basic)
            answer = await code_grant_on_the_loop(provider, found, fields, CONTEXT)
            return (
                answer if answer is not None else token_response(provider, fields, basic, CONTEXT)
            )
        finally:
            await provider.database.close_loop_connections()

    return asyncio.run(on_the_loop())


def refused(provider: Provider, client: Registered, issued: str, **form: str) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        redeem(provider, client, issued, **form)
    return caught.value


def id_claims(provider: Provider, client: Registered, id_token: str) -> dict[str, Any]:
    verifier = jose.Verifier(
        provider.keyring.key_set(), algorithms=["RS256"], issuer=ISSUER, audience=client.id
    )
    return verifier.verify(id_token)


@pytest.fixture
def ada(provider: Provider, tenant: str) -> User:
    return add_user(provider, tenant)


def test_a_code_gives_an_access_token_and_an_id_token(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant)
    answer = redeem(provider, client, code_for(provider, client, ada))
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope", "id_token"}
    assert (answer["token_type"], answer["scope"]) == ("Bearer", "openid read")
    access = provider.issuer.verifier().verify(answer["access_token"])
    assert (access["sub"], access["client_id"], access["aud"]) == (ada.id, client.id, AUDIENCE)
    assert access["amr"] == ["pwd", "otp"] and access["roles"] == ["member"]
    claims = id_claims(provider, client, answer["id_token"])
    assert jose.jwt.decode_unverified(answer["id_token"])[0]["alg"] == "RS256"
    assert (claims["sub"], claims["aud"], claims["nonce"], claims["acr"]) == (
        ada.id,
        client.id,
        NONCE,
        "mfa",
    )
    assert claims["at_hash"] == at_hash(answer["access_token"], "RS256")
    assert claims["auth_time"] == access["auth_time"] and claims["amr"] == ["pwd", "otp"]
    assert claims["sid"] == "0b7c9a52-6f1e-4d2a-8c3b-9e4f5a6b7c8d"


def test_without_openid_there_is_no_id_token(provider: Provider, tenant: str, ada: User) -> None:
    client = code_client(provider, tenant)
    answer = redeem(provider, client, code_for(provider, client, ada, scope="read"))
    assert "id_token" not in answer and answer["scope"] == "read"


def test_offline_access_or_the_refresh_grant_brings_a_refresh_token(
    provider: Provider, tenant: str, ada: User
) -> None:
    plain = code_client(provider, tenant)
    offline = redeem(provider, plain, code_for(provider, plain, ada, "openid offline_access"))
    assert "refresh_token" in offline
    refreshing = code_client(provider, tenant, grants=("authorization_code", "refresh_token"))
    assert "refresh_token" in redeem(provider, refreshing, code_for(provider, refreshing, ada))


def test_a_refresh_keeps_the_openid_scopes_and_brings_a_new_id_token(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant, grants=("authorization_code", "refresh_token"))
    first = redeem(provider, client, code_for(provider, client, ada, "openid read"))
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = token_response(provider, form, client.basic, CONTEXT)
    assert second["scope"] == "openid read"
    before = id_claims(provider, client, first["id_token"])
    after = id_claims(provider, client, second["id_token"])
    assert (after["sub"], after["auth_time"], after["amr"]) == (
        before["sub"],
        before["auth_time"],
        before["amr"],
    )
    assert "nonce" not in after
    assert after["at_hash"] == at_hash(second["access_token"], "RS256")


def test_a_public_client_redeems_with_its_id_and_the_verifier(
    provider: Provider, tenant: str, ada: User
) -> None:
    public = code_client(provider, tenant, confidential=False)
    assert "id_token" in redeem(provider, public, code_for(provider, public, ada))
    error = refused(provider, public, code_for(provider, public, ada), code_verifier="x" * 43)
    assert error.error == "invalid_grant"


def test_a_replayed_code_is_refused_and_revokes_what_it_gave(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant, grants=("authorization_code", "refresh_token"))
    code = code_for(provider, client, ada)
    answer = redeem(provider, client, code)
    error = refused(provider, client, code)
    assert (error.error, oauth_status(error)) == ("invalid_grant", 400)
    assert error.description == "authorization code already used"
    access = provider.issuer.verifier().verify(answer["access_token"])
    with provider.database.session(readonly=True) as session:
        assert provider.revocations.is_revoked(session, access)
    form = {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]}
    with pytest.raises(OAuthError) as caught:
        token_response(provider, form, client.basic, CONTEXT)
    assert caught.value.error == "invalid_grant"
    (replayed,) = [event for event in audit_events(provider) if event.event == "code.replayed"]
    assert (replayed.outcome, replayed.subject, replayed.client_id) == (
        "failure",
        ada.id,
        client.id,
    )


def test_of_simultaneous_redemptions_exactly_one_gets_tokens(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant)
    code = code_for(provider, client, ada)
    results = run_together([lambda: redeem(provider, client, code)] * 4)
    answers = [result for result in results if isinstance(result, dict)]
    errors = [result for result in results if isinstance(result, OAuthError)]
    assert (len(answers), len(errors)) == (1, 3), results
    assert {error.error for error in errors} == {"invalid_grant"}


@pytest.mark.parametrize(
    ("form", "error", "status"),
    [
        ({"code": ""}, "invalid_request", 400),
        ({"code": "not-a-code"}, "invalid_grant", 400),
        ({"redirect_uri": REDIRECT + "/"}, "invalid_grant", 400),
        ({"code_verifier": ""}, "invalid_grant", 400),
    ],
)
def test_bad_redemptions_are_refused(
    provider: Provider, tenant: str, ada: User, form: dict[str, str], error: str, status: int
) -> None:
    client = code_client(provider, tenant)
    caught = refused(provider, client, code_for(provider, client, ada), **form)
    assert (caught.error, oauth_status(caught)) == (error, status)
    if error == "invalid_grant":  # the refusal is audited (in the transaction it commits)
        (event,) = [event for event in audit_events(provider) if event.event == "code.refused"]
        assert (event.outcome, event.client_id) == ("failure", client.id)
        assert caught.description in event.details


def test_a_client_not_allowed_the_grant_or_another_client_gets_nothing(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant)
    code = code_for(provider, client, ada)
    service = add_client(provider, tenant)  # client_credentials only
    assert refused(provider, service, code).error == "unauthorized_client"
    other = code_client(provider, tenant)
    assert refused(provider, other, code).error == "invalid_grant"
    assert "id_token" in redeem(provider, client, code)  # neither attempt spent it


def test_a_user_disabled_since_the_sign_in_gets_nothing(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant)
    code = code_for(provider, client, ada)
    set_user_status(provider, ada.id, "disabled")
    assert refused(provider, client, code).error == "invalid_grant"


def test_a_client_may_ask_for_another_id_token_algorithm(
    provider: Provider, tenant: str, ada: User
) -> None:
    with provider.database.session() as session:
        made = create_client(
            session,
            provider.master,
            tenant_id=tenant,
            name="es",
            grant_types=("authorization_code",),
            audience=(AUDIENCE,),
            allowed_scopes=("read",),
            redirect_uris=(REDIRECT,),
            id_token_signed_response_alg="ES256",
        )
    client = Registered(made.client.id, made.secret, tenant)
    answer = redeem(provider, client, code_for(provider, client, ada))
    assert jose.jwt.decode_unverified(answer["id_token"])[0]["alg"] == "ES256"
