"""The token endpoint's grants, called as a service (no HTTP): client authentication, scopes,
audiences, the password grant, and nothing half-written when a grant fails."""

from __future__ import annotations

from typing import Any

import pytest

from tessera import jose
from tessera.idp.errors import OAuthError
from tessera.idp.flows.grants import token_response
from tessera.idp.http.answers import oauth_status
from tessera.idp.provider import Provider
from tessera.idp.services.audit import Context
from tessera.idp.services.clients import SECRET_PURPOSE
from tessera.idp.store.models import User
from tessera.jose import b64

from ..conftest import (
    AUDIENCE,
    CHEAP_PASSWORDS,
    Registered,
    add_client,
    add_tenant,
    add_user,
    all_rows,
    client_row,
    first_party_client,
    row_counts,
    set_user_status,
)

CONTEXT = Context(ip="203.0.113.7", user_agent="pytest")
PASSWORD = "correct horse battery staple"


def grant(
    provider: Provider, form: dict[str, str], basic: tuple[str, str] | None = None
) -> dict[str, Any]:
    return token_response(provider, form, basic, CONTEXT)


def refused(
    provider: Provider, form: dict[str, str], basic: tuple[str, str] | None = None
) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        grant(provider, form, basic)
    return caught.value


def claims_of(provider: Provider, answer: dict[str, Any]) -> dict[str, Any]:
    return provider.issuer.verifier().verify(answer["access_token"])


@pytest.fixture
def service(cheap_passwords: Provider, tenant: str) -> Registered:
    """A confidential client allowed client_credentials, scopes read/write (default read)."""
    return add_client(cheap_passwords, tenant)


# ---------------------------------------------------------------------- client_credentials


def test_client_credentials_with_client_secret_basic(
    provider: Provider, service: Registered
) -> None:
    answer = grant(provider, {"grant_type": "client_credentials"}, service.basic)
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == provider.settings.access_token_ttl
    assert answer["scope"] == "read"
    assert "refresh_token" not in answer
    claims = claims_of(provider, answer)
    assert (claims["sub"], claims["client_id"], claims["aud"]) == (service.id, service.id, AUDIENCE)
    assert (claims["tenant"], claims["scope"]) == (service.tenant_id, "read")


def test_client_credentials_with_client_secret_post(
    provider: Provider, service: Registered
) -> None:
    assert service.secret is not None
    answer = grant(
        provider,
        {
            "grant_type": "client_credentials",
            "client_id": service.id,
            "client_secret": service.secret,
        },
    )
    assert claims_of(provider, answer)["client_id"] == service.id


def test_wrong_secret_and_unknown_client_are_the_same_invalid_client(
    provider: Provider, service: Registered
) -> None:
    form = {"grant_type": "client_credentials"}
    errors = [
        refused(provider, form, (service.id, "wrong-secret")),
        refused(provider, form, ("no-such-client", "wrong-secret")),
        refused(provider, {**form, "client_id": service.id, "client_secret": "wrong-secret"}),
        refused(provider, {**form, "client_id": "no-such-client", "client_secret": "x"}),
        refused(provider, {**form, "client_id": service.id}),  # a confidential client, no secret
        refused(provider, form, (service.id, "")),
    ]
    assert {(error.error, error.description, oauth_status(error)) for error in errors} == {
        ("invalid_client", "client authentication failed", 401)
    }


def test_no_client_authentication_at_all_is_invalid_client(provider: Provider) -> None:
    error = refused(provider, {"grant_type": "client_credentials"})
    assert (error.error, oauth_status(error)) == ("invalid_client", 401)


def test_both_authentication_methods_at_once_are_an_invalid_request(
    provider: Provider, service: Registered
) -> None:
    assert service.secret is not None
    form = {"grant_type": "client_credentials", "client_secret": service.secret}
    assert refused(provider, form, service.basic).error == "invalid_request"
    mismatch = {"grant_type": "client_credentials", "client_id": "someone-else"}
    assert refused(provider, mismatch, service.basic).error == "invalid_request"


def test_a_public_client_cannot_use_client_credentials(provider: Provider, tenant: str) -> None:
    public = add_client(provider, tenant, confidential=False)
    error = refused(provider, {"grant_type": "client_credentials", "client_id": public.id})
    assert error.error == "unauthorized_client"


def test_a_public_client_presenting_a_secret_is_refused(provider: Provider, tenant: str) -> None:
    public = add_client(provider, tenant, confidential=False)
    error = refused(provider, {"grant_type": "client_credentials"}, (public.id, "anything"))
    assert error.error == "invalid_client"


# ---------------------------------------------------------------------- scopes and audience


def test_granted_scopes_are_requested_intersected_with_allowed(
    provider: Provider, service: Registered
) -> None:
    form = {"grant_type": "client_credentials", "scope": "write admin read"}
    answer = grant(provider, form, service.basic)
    assert answer["scope"] == "write read"
    assert claims_of(provider, answer)["scope"] == "write read"


@pytest.mark.parametrize("scope", [None, "", "   "])
def test_nothing_requested_grants_the_default_scopes(
    provider: Provider, service: Registered, scope: str | None
) -> None:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    assert grant(provider, form, service.basic)["scope"] == "read"


def test_no_allowed_scope_requested_is_invalid_scope(
    provider: Provider, service: Registered
) -> None:
    form = {"grant_type": "client_credentials", "scope": "admin delete"}
    assert refused(provider, form, service.basic).error == "invalid_scope"


def test_allowed_resource_becomes_the_audience(provider: Provider, tenant: str) -> None:
    client = add_client(provider, tenant, audience=(AUDIENCE, "https://billing.example"))
    plain = grant(provider, {"grant_type": "client_credentials"}, client.basic)
    assert claims_of(provider, plain)["aud"] == AUDIENCE
    form = {"grant_type": "client_credentials", "resource": "https://billing.example"}
    assert claims_of(provider, grant(provider, form, client.basic))["aud"] == (
        "https://billing.example"
    )


def test_resource_the_client_may_not_target_is_invalid_target(
    provider: Provider, service: Registered
) -> None:
    form = {"grant_type": "client_credentials", "resource": "https://elsewhere.example"}
    assert refused(provider, form, service.basic).error == "invalid_target"


# ---------------------------------------------------------------------- grant types


def test_unsupported_grant_type(provider: Provider, service: Registered) -> None:
    for grant_type in ("implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", "x"):
        error = refused(provider, {"grant_type": grant_type}, service.basic)
        assert error.error == "unsupported_grant_type"


def test_missing_grant_type_is_an_invalid_request(provider: Provider, service: Registered) -> None:
    assert refused(provider, {}, service.basic).error == "invalid_request"


def test_client_not_allowed_the_grant_is_unauthorized_client(
    provider: Provider, service: Registered
) -> None:
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    assert refused(provider, form, service.basic).error == "unauthorized_client"
    form = {"grant_type": "refresh_token", "refresh_token": "whatever"}
    assert refused(provider, form, service.basic).error == "unauthorized_client"


# ---------------------------------------------------------------------- password grant


def test_password_grant_logs_a_first_party_client_in(provider: Provider, tenant: str) -> None:
    user = add_user(provider, tenant, password=PASSWORD, roles=("admin", "ops"))
    client = first_party_client(provider, tenant)
    form = {"grant_type": "password", "username": "Ada", "password": PASSWORD}
    answer = grant(provider, form, client.basic)
    assert answer["refresh_token"]
    assert len(b64.decode(answer["refresh_token"])) >= 32
    claims = claims_of(provider, answer)
    assert (claims["sub"], claims["client_id"], claims["tenant"]) == (user.id, client.id, tenant)
    assert claims["roles"] == ["admin", "ops"]
    assert claims["amr"] == ["pwd"]
    assert claims["auth_time"] == claims["iat"]


def test_password_grant_works_for_a_public_first_party_client(
    provider: Provider, tenant: str
) -> None:
    add_user(provider, tenant, password=PASSWORD)
    web = add_client(
        provider,
        tenant,
        grant_types=("password", "refresh_token"),
        first_party=True,
        confidential=False,
    )
    form = {
        "grant_type": "password",
        "client_id": web.id,
        "username": "ada",
        "password": PASSWORD,
    }
    assert claims_of(provider, grant(provider, form))["client_id"] == web.id


def test_password_grant_is_only_for_first_party_clients(provider: Provider, tenant: str) -> None:
    add_user(provider, tenant, password=PASSWORD)
    third_party = add_client(provider, tenant, grant_types=("password",), first_party=False)
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    assert refused(provider, form, third_party.basic).error == "unauthorized_client"


def test_wrong_password_and_unknown_user_are_the_same_invalid_grant(
    provider: Provider, tenant: str
) -> None:
    add_user(provider, tenant, password=PASSWORD)
    client = first_party_client(provider, tenant)
    wrong = refused(
        provider, {"grant_type": "password", "username": "ada", "password": "nope"}, client.basic
    )
    unknown = refused(
        provider,
        {"grant_type": "password", "username": "nobody", "password": PASSWORD},
        client.basic,
    )
    assert (wrong.error, wrong.description) == ("invalid_grant", "invalid username or password")
    assert (unknown.error, unknown.description) == (wrong.error, wrong.description)


def test_disabled_user_is_refused_even_with_the_right_password(
    provider: Provider, tenant: str
) -> None:
    user = add_user(provider, tenant, password=PASSWORD)
    client = first_party_client(provider, tenant)
    set_user_status(provider, user.id, "disabled")
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    assert refused(provider, form, client.basic).error == "invalid_grant"


def test_user_of_another_tenant_cannot_log_in_through_this_client(
    provider: Provider, tenant: str
) -> None:
    add_tenant(provider, "other")
    add_user(provider, "other", password=PASSWORD)
    client = first_party_client(provider, tenant)
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    assert refused(provider, form, client.basic).error == "invalid_grant"


def test_password_grant_without_credentials_is_an_invalid_request(
    provider: Provider, tenant: str
) -> None:
    client = first_party_client(provider, tenant)
    for form in ({"username": "ada"}, {"password": PASSWORD}, {"username": "", "password": "x"}):
        error = refused(provider, {"grant_type": "password", **form}, client.basic)
        assert error.error == "invalid_request"


def test_user_passwords_are_argon2id_and_rehashed_when_parameters_change(
    provider: Provider, tenant: str
) -> None:
    owasp = provider.passwords
    user = add_user(provider, tenant, password=PASSWORD, passwords=CHEAP_PASSWORDS)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert "m=8," in user.password_hash
    client = first_party_client(provider, tenant)
    grant(
        provider,
        {"grant_type": "password", "username": "ada", "password": PASSWORD},
        client.basic,
    )
    with provider.database.session(readonly=True) as session:
        stored = session.get(User, user.id)
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert owasp.verify(stored.password_hash, PASSWORD)


# ---------------------------------------------------------------------- secrets at rest


def test_client_secrets_have_256_bits_and_are_stored_only_as_a_keyed_hash(
    provider: Provider, tenant: str
) -> None:
    clients = [add_client(provider, tenant) for _ in range(3)]
    secrets = [client.secret for client in clients]
    assert all(secret is not None for secret in secrets)
    assert len(set(secrets)) == 3
    for client in clients:
        assert client.secret is not None
        assert len(b64.decode(client.secret)) >= 32
        stored = client_row(provider, client.id).secret_hash
        assert stored == provider.master.keyed_hash(SECRET_PURPOSE, client.secret)
        grant(provider, {"grant_type": "client_credentials"}, client.basic)
    dump = repr(all_rows(provider))
    for secret in secrets:
        assert secret is not None and secret not in dump


# ---------------------------------------------------------------------- nothing half-written


def test_failed_client_credentials_grant_leaves_the_database_unchanged(
    provider: Provider, service: Registered
) -> None:
    before = all_rows(provider)
    for form in (
        {"grant_type": "client_credentials", "scope": "admin"},
        {"grant_type": "client_credentials", "resource": "https://elsewhere.example"},
    ):
        refused(provider, form, service.basic)
    assert all_rows(provider) == before


def test_failed_password_grant_after_authentication_leaves_the_database_unchanged(
    provider: Provider, tenant: str
) -> None:
    add_user(provider, tenant, password=PASSWORD)
    client = first_party_client(provider, tenant)
    before = all_rows(provider)
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD, "scope": "admin"}
    assert refused(provider, form, client.basic).error == "invalid_scope"
    assert all_rows(provider) == before
    form = {**form, "scope": "read", "resource": "https://elsewhere.example"}
    assert refused(provider, form, client.basic).error == "invalid_target"
    assert all_rows(provider) == before
    assert row_counts(provider)["refresh_families"] == 0


def test_issuing_writes_only_the_audit_row(provider: Provider, service: Registered) -> None:
    before = row_counts(provider)
    grant(provider, {"grant_type": "client_credentials"}, service.basic)
    after = row_counts(provider)
    assert {name: after[name] - before[name] for name in after if after[name] != before[name]} == {
        "audit_events": 1
    }


def test_issued_tokens_verify_at_a_guard_using_the_jwks(
    provider: Provider, service: Registered
) -> None:
    answer = grant(provider, {"grant_type": "client_credentials"}, service.basic)
    verifier = jose.Verifier(
        jose.KeySet.from_jwks(provider.keyring.jwks()),
        algorithms=["ES256"],
        issuer=provider.settings.issuer,
        audience=AUDIENCE,
        typ="at+jwt",
    )
    assert verifier.verify(answer["access_token"])["sub"] == service.id
