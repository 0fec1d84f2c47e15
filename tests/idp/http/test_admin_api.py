"""The admin API over real HTTP: what each resource does, and what the guard in front refuses.

Created objects answer 201 with a Location that reads them back; a client's secret is in exactly
one answer (creation, then each rotation) and never in a read or the audit log; disabling a user
ends their sessions; role changes reach the next refreshed token; key rotation is picked up by
the admin API's own guard; tokens for another audience, revoked or of another issuer are refused.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson
import pyotp
import pytest

from tessera import jose
from tessera.idp.flows.bootstrap import ADMIN_AUDIENCE
from tessera.idp.services import mfa
from tessera.idp.services.accounts import find_user
from tessera.idp.services.audit import Context
from tessera.idp.services.authorization_codes import CodeGrant
from tessera.idp.services.pkce import challenge_of

from ..conftest import all_rows, audit_events, row_counts
from .checks import assert_no_store, assert_oauth_error, assert_problem, header, payload
from .servers import (
    AUDIENCE,
    CHEAP_ARGON2,
    DEMO,
    SYSTEM_ADMIN_SCOPE,
    TENANT_ADMIN_SCOPE,
    IdpServer,
    admin_token,
    client_credentials,
    password_grant,
)

PASSWORD = "correct horse battery staple"
TENANT = "acme"


pytestmark = pytest.mark.idp(**CHEAP_ARGON2)


@pytest.fixture(scope="module", autouse=True)
def tenant_admin(idp: IdpServer) -> str:
    return idp.add_tenant_admin(TENANT, PASSWORD)


@pytest.fixture
def root(idp: IdpServer, http: httpx.Client) -> dict[str, str]:
    """Headers with a system admin's token."""
    return {"Authorization": f"Bearer {admin_token(http, 'admin', idp.admin_password)}"}


@pytest.fixture
def admin(idp: IdpServer, http: httpx.Client) -> dict[str, str]:
    """Headers with the tenant admin's token."""
    token = admin_token(
        http, f"{TENANT}-admin", PASSWORD, client_id=f"{TENANT}-web", scope=TENANT_ADMIN_SCOPE
    )
    return {"Authorization": f"Bearer {token}"}


def fresh() -> str:
    return uuid.uuid4().hex[:12]


def users_url(*parts: str) -> str:
    return "/".join((f"/admin/tenants/{TENANT}/users", *parts))


def create_user(http: httpx.Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body = {"username": f"u-{fresh()}", "password": PASSWORD, **body}
    response = http.post(users_url(), json=body, headers=headers)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


# ---------------------------------------------------------------------------- the resources


def test_a_created_user_is_at_its_location(http: httpx.Client, admin: dict[str, str]) -> None:
    response = http.post(
        users_url(),
        json={
            "username": "Grace",
            "password": PASSWORD,
            "email": "grace@example.org",
            "roles": ["member"],
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert response.headers["location"] == users_url(made["id"])
    assert made["username"] == "Grace" and made["email"] == "grace@example.org"
    assert made["roles"] == ["member"] and made["status"] == "active" and made["mfa"] is False
    assert "password" not in response.text and "hash" not in response.text
    again = http.get(response.headers["location"], headers=admin)
    assert again.status_code == 200
    assert again.json() == made
    # Usernames are unique per tenant, whatever their case.
    taken = http.post(users_url(), json={"username": "GRACE", "password": PASSWORD}, headers=admin)
    assert taken.status_code == 409
    assert taken.json()["code"] == "conflict"


def test_users_are_listed_a_page_at_a_time(http: httpx.Client, admin: dict[str, str]) -> None:
    prefix = f"page-{fresh()}"
    for index in range(5):
        create_user(http, admin, username=f"{prefix}-{index}")
    seen: list[str] = []
    after: str | None = f"{prefix}-"
    while after is not None:
        params: dict[str, Any] = {"limit": 2, "after": after}
        page = http.get(users_url(), params=params, headers=admin).json()
        assert len(page["users"]) <= 2
        seen += [user["username"] for user in page["users"]]
        after = page["next_cursor"]
    mine = [name for name in seen if name.startswith(prefix)]
    assert mine == [f"{prefix}-{index}" for index in range(5)]
    refused = http.get(users_url(), params={"limit": 0}, headers=admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"


def test_a_weak_password_is_a_422_problem_that_names_the_reason(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    response = http.post(
        users_url(), json={"username": f"u-{fresh()}", "password": "unbelievable"}, headers=admin
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["reason"] == "common"
    assert set(problem) >= {"type", "title", "status", "detail"}
    user = create_user(http, admin)
    changed = http.patch(users_url(user["id"]), json={"password": "short"}, headers=admin)
    assert changed.status_code == 422 and changed.json()["reason"] == "too_short"


def test_a_password_set_by_an_admin_logs_in(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    user = create_user(http, admin, roles=["member"])
    new = "a different long passphrase"
    assert http.patch(users_url(user["id"]), json={"password": new}, headers=admin).is_success
    answer = password_grant(http, user["username"], new, client_id=f"{TENANT}-web")
    assert payload(answer["access_token"])["sub"] == user["id"]


def login(http: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    return password_grant(
        http, username, password, client_id=f"{TENANT}-web", scope="demo:read demo:write"
    )


def attempt(http: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    """A password grant by the tenant's login client, whatever its outcome."""
    form = {"grant_type": "password", "client_id": f"{TENANT}-web", "username": username}
    return http.post("/oauth2/token", data={**form, "password": password})


def refresh(http: httpx.Client, token: str) -> httpx.Response:
    return http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": f"{TENANT}-web"},
    )


def test_disabling_a_user_ends_their_sessions(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    user = create_user(http, admin, roles=["member", "admin"])
    session = login(http, user["username"])
    their_admin_token = admin_token(
        http, user["username"], PASSWORD, client_id=f"{TENANT}-web", scope=TENANT_ADMIN_SCOPE
    )
    mine = {"Authorization": f"Bearer {their_admin_token}"}
    assert http.get(users_url(user["id"]), headers=mine).status_code == 200
    response = http.patch(users_url(user["id"]), json={"status": "disabled"}, headers=admin)
    assert response.status_code == 200 and response.json()["status"] == "disabled"
    assert_oauth_error(refresh(http, session["refresh_token"]), 400, "invalid_grant")
    refused = http.get(users_url(user["id"]), headers=mine)
    assert refused.status_code == 401
    assert 'error_description="revoked"' in refused.headers["www-authenticate"]
    # And they cannot log in again until enabled.
    assert_oauth_error(attempt(http, user["username"]), 400, "invalid_grant")
    assert http.patch(users_url(user["id"]), json={"status": "active"}, headers=admin).is_success
    assert login(http, user["username"])["access_token"]


def test_a_locked_user_cannot_log_in_until_set_active(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    user = create_user(http, admin, roles=["member"])
    locked = http.patch(users_url(user["id"]), json={"status": "locked"}, headers=admin)
    assert locked.json()["status"] == "locked" and locked.json()["locked_until"] is None
    assert_oauth_error(attempt(http, user["username"]), 429, "invalid_grant")
    assert http.patch(users_url(user["id"]), json={"status": "active"}, headers=admin).is_success
    assert login(http, user["username"])["access_token"]


def test_role_changes_show_in_the_next_refreshed_token(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    roles_url = f"/admin/tenants/{TENANT}/roles"
    extra = f"extra-{fresh()}"
    made = http.post(roles_url, json={"name": extra, "permissions": ["demo:read"]}, headers=admin)
    assert made.status_code == 201 and made.headers["location"] == f"{roles_url}/{extra}"
    user = create_user(http, admin, roles=["member"])
    session = login(http, user["username"])
    assert payload(session["access_token"])["roles"] == ["member"]

    put = http.put(users_url(user["id"], "roles"), json={"roles": ["member", extra]}, headers=admin)
    assert put.status_code == 200 and put.json() == {"roles": sorted(["member", extra])}
    session = refresh(http, session["refresh_token"]).json()
    claims = payload(session["access_token"])
    assert claims["roles"] == sorted(["member", extra])
    assert claims["scope"] == "demo:read demo:write"

    # Taking the permission away from the role narrows the next token's scope.
    member = http.patch(f"{roles_url}/member", json={"permissions": ["demo:read"]}, headers=admin)
    assert member.status_code == 200 and member.json()["permissions"] == ["demo:read"]
    try:
        session = refresh(http, session["refresh_token"]).json()
        assert payload(session["access_token"])["scope"] == "demo:read"
    finally:
        restored = http.patch(
            f"{roles_url}/member",
            json={"permissions": ["demo:read", "demo:write", "profile"]},
            headers=admin,
        )
        assert restored.status_code == 200

    # Deleting a role takes it away from its holders.
    assert http.delete(f"{roles_url}/{extra}", headers=admin).status_code == 204
    assert http.get(f"{roles_url}/{extra}", headers=admin).status_code == 404
    session = refresh(http, session["refresh_token"]).json()
    assert payload(session["access_token"])["roles"] == ["member"]
    assert http.get(users_url(user["id"]), headers=admin).json()["roles"] == ["member"]

    put = http.put(users_url(user["id"], "roles"), json={"roles": []}, headers=admin)
    assert put.json() == {"roles": []}
    session = refresh(http, session["refresh_token"]).json()
    claims = payload(session["access_token"])
    assert claims["roles"] == [] and claims["scope"] == ""


def test_a_client_secret_is_shown_once_at_creation_and_once_per_rotation(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    clients_url = f"/admin/tenants/{TENANT}/clients"
    response = http.post(
        clients_url,
        json={
            "name": "Billing",
            "grant_types": ["client_credentials"],
            "audience": [AUDIENCE],
            "allowed_scopes": ["demo:read"],
            "default_scopes": ["demo:read"],
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert_no_store(response)
    made = response.json()
    secret = made["client_secret"]
    assert isinstance(secret, str) and len(secret) >= 43
    assert response.headers["location"] == f"{clients_url}/{made['id']}"
    assert made["confidential"] is True and made["tenant"] == TENANT
    token = client_credentials(http, made["id"], secret)["access_token"]
    assert payload(token)["tenant"] == TENANT

    read = http.get(response.headers["location"], headers=admin)
    listed = http.get(clients_url, headers=admin)
    assert secret not in read.text and "client_secret" not in read.json()
    assert secret not in listed.text
    assert made["id"] in {client["id"] for client in listed.json()["clients"]}

    rotated = http.post(f"{clients_url}/{made['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    assert_no_store(rotated)
    new_secret = rotated.json()["client_secret"]
    assert rotated.json()["client_id"] == made["id"] and new_secret != secret
    refused = http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(made["id"], secret)
    )
    assert_oauth_error(refused, 401, "invalid_client")
    assert client_credentials(http, made["id"], new_secret)["access_token"]
    assert new_secret not in http.get(response.headers["location"], headers=admin).text

    # Neither secret is anywhere in the database in clear, nor in the audit log.
    everything = repr(all_rows(idp.provider))
    assert secret not in everything and new_secret not in everything
    details = " ".join(row.details for row in audit_events(idp.provider))
    assert "client_secret" not in details


def test_a_public_client_has_no_secret_to_show_or_rotate(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    clients_url = f"/admin/tenants/{TENANT}/clients"
    response = http.post(
        clients_url,
        json={
            "name": "Mobile app",
            "grant_types": ["password", "refresh_token"],
            "audience": [AUDIENCE],
            "allowed_scopes": ["demo:read"],
            "first_party": True,
            "confidential": False,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["client_secret"] is None
    client_id = response.json()["id"]
    rotated = http.post(f"{clients_url}/{client_id}/rotate-secret", headers=admin)
    assert rotated.status_code == 422
    assert rotated.headers["content-type"] == "application/problem+json"


CALLBACK = "https://wiki.example/callback"


def register(http: httpx.Client, headers: dict[str, str], **body: Any) -> httpx.Response:
    """POST a client: an OpenID Connect web app unless ``body`` says otherwise."""
    wanted = {
        "name": "Wiki",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [CALLBACK],
        **body,
    }
    return http.post(f"/admin/tenants/{TENANT}/clients", json=wanted, headers=headers)


def test_an_oidc_relying_party_is_registered_with_its_uris_and_its_tokens_are_for_itself(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    response = register(
        http,
        admin,
        redirect_uris=[CALLBACK, "http://127.0.0.1/cb", CALLBACK],
        post_logout_redirect_uris=["https://wiki.example/bye"],
        backchannel_logout_uri="https://wiki.example/backchannel",
        id_token_signed_response_alg="ES256",
    )
    assert response.status_code == 201, response.text
    made = response.json()
    client_id, secret = made["id"], made["client_secret"]
    assert isinstance(secret, str)
    assert made["grant_types"] == ["authorization_code", "refresh_token"]
    assert made["redirect_uris"] == [CALLBACK, "http://127.0.0.1/cb"]
    assert made["post_logout_redirect_uris"] == ["https://wiki.example/bye"]
    assert made["backchannel_logout_uri"] == "https://wiki.example/backchannel"
    assert made["id_token_signed_response_alg"] == "ES256"
    assert made["token_endpoint_auth_method"] == "client_secret_basic"
    # No audience given: the relying party's access tokens are for itself.
    assert made["audience"] == [client_id]
    read = http.get(response.headers["location"], headers=admin).json()
    assert read == {key: value for key, value in made.items() if key != "client_secret"}
    listed = http.get(f"/admin/tenants/{TENANT}/clients", headers=admin).json()["clients"]
    assert read in listed

    # A code for it (the authorization endpoint's part) redeems for an access token whose
    # audience is the client, and an ID token signed with the algorithm it registered.
    verifier = uuid.uuid4().hex * 2
    user_id = idp.add_user(f"u-{fresh()}", PASSWORD, TENANT)
    grant = CodeGrant(
        tenant_id=TENANT,
        client_id=client_id,
        user_id=user_id,
        redirect_uri=CALLBACK,
        scope="openid",
        code_challenge=challenge_of(verifier),
        auth_time=int(time.time()),
        amr="pwd",
    )
    with idp.provider.database.session() as session:
        code = idp.provider.codes.issue(session, grant, now=int(time.time()))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    answer = http.post("/oauth2/token", data=form, auth=(client_id, secret))
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert payload(tokens["access_token"])["aud"] == client_id
    assert header(tokens["id_token"])["alg"] == "ES256"
    assert payload(tokens["id_token"])["aud"] == client_id


def test_a_public_oidc_client_authenticates_with_none(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    response = register(http, admin, confidential=False, audience=["wiki-api"])
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["client_secret"] is None and made["confidential"] is False
    assert made["token_endpoint_auth_method"] == "none"
    assert made["audience"] == ["wiki-api"]
    assert made["id_token_signed_response_alg"] == "RS256"
    assert (made["post_logout_redirect_uris"], made["backchannel_logout_uri"]) == ([], None)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"redirect_uris": []}, "the authorization_code grant needs a redirect URI"),
        ({"redirect_uris": ["https://wiki.example/cb#top"]}, "a redirect URI has no fragment"),
        ({"redirect_uris": ["http://wiki.example/cb"]}, "http only on a loopback host"),
        ({"redirect_uris": ["not a uri"]}, "a redirect URI is printable ASCII without spaces"),
        ({"redirect_uris": ["wiki/callback"]}, "a redirect URI is https, loopback http"),
        ({"redirect_uris": ["x" * 2001]}, None),
        ({"redirect_uris": [CALLBACK] * 11}, None),
        (
            {"post_logout_redirect_uris": ["https://wiki.example/bye#x"]},
            "a redirect URI has no fragment",
        ),
        (
            {"backchannel_logout_uri": "http://wiki.example/logout"},
            "a back-channel logout URI is https",
        ),
        (
            {"backchannel_logout_uri": "com.example.wiki:/logout"},
            "a back-channel logout URI is https",
        ),
        ({"id_token_signed_response_alg": "HS256"}, "ID tokens are signed with one of RS256"),
        ({"id_token_signed_response_alg": "none"}, "ID tokens are signed with one of RS256"),
        (
            {"grant_types": ["client_credentials"], "audience": ["wiki-api"]},
            "redirect and logout URIs are for clients of the authorization_code grant",
        ),
        (
            {"grant_types": ["client_credentials"], "redirect_uris": []},
            "a client needs at least one audience without spaces",
        ),
        ({"grant_types": ["implicit"]}, "grant types are some of authorization_code,"),
    ],
)
def test_a_client_with_unusable_uris_or_alg_is_refused_and_nothing_is_written(
    idp: IdpServer,
    http: httpx.Client,
    admin: dict[str, str],
    body: dict[str, Any],
    detail: str | None,
) -> None:
    before = row_counts(idp.provider)
    response = register(http, admin, **body)
    assert_problem(response, 422)
    if detail is not None:
        assert detail in response.json()["detail"], response.text
    assert row_counts(idp.provider) == before


def test_changed_redirect_uris_are_audited_with_before_and_after(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    made = register(http, admin).json()
    url = f"/admin/tenants/{TENANT}/clients/{made['id']}"
    new = ["https://wiki.example/v2/callback", "https://wiki.example/v3/callback"]
    changed = http.patch(
        url,
        json={"redirect_uris": new, "backchannel_logout_uri": "https://wiki.example/bc"},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["redirect_uris"] == new
    assert (
        http.get(url, headers=admin).json()["backchannel_logout_uri"] == "https://wiki.example/bc"
    )
    (row,) = [
        event
        for event in audit_events(idp.provider)
        if event.event == "client.updated" and event.client_id == made["id"]
    ]
    assert orjson.loads(row.details) == {
        "before": {"redirect_uris": CALLBACK, "backchannel_logout_uri": None},
        "after": {
            "redirect_uris": " ".join(new),
            "backchannel_logout_uri": "https://wiki.example/bc",
        },
    }

    # An explicit null removes the back-channel logout URI; leaving it out keeps it.
    renamed = http.patch(url, json={"name": "Wiki 2"}, headers=admin).json()
    assert renamed["backchannel_logout_uri"] == "https://wiki.example/bc"
    cleared = http.patch(url, json={"backchannel_logout_uri": None}, headers=admin).json()
    assert cleared["backchannel_logout_uri"] is None and cleared["redirect_uris"] == new

    before = row_counts(idp.provider)
    for body in (
        {"redirect_uris": []},
        {"redirect_uris": ["https://wiki.example/cb#x"]},
        {"post_logout_redirect_uris": ["http://wiki.example/bye"]},
        {"backchannel_logout_uri": "https://wiki.example/bc#x"},
    ):
        assert_problem(http.patch(url, json=body, headers=admin), 422)
    assert http.get(url, headers=admin).json() == cleared
    assert row_counts(idp.provider) == before


def test_a_service_client_takes_no_redirect_uri(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    client_id = f"svc-{fresh()}"
    idp.add_client(client_id, tenant_id=TENANT)
    url = f"/admin/tenants/{TENANT}/clients/{client_id}"
    refused = http.patch(url, json={"redirect_uris": [CALLBACK]}, headers=admin)
    assert_problem(refused, 422)
    assert "for clients of the authorization_code grant" in refused.json()["detail"]
    assert http.get(url, headers=admin).json()["redirect_uris"] == []


def test_a_disabled_client_gets_no_tokens(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    client_id = f"svc-{fresh()}"
    secret = idp.add_client(client_id, tenant_id=TENANT)
    url = f"/admin/tenants/{TENANT}/clients/{client_id}"
    changed = http.patch(url, json={"status": "disabled", "name": "Old svc"}, headers=admin)
    assert changed.status_code == 200
    assert changed.json()["status"] == "disabled" and changed.json()["name"] == "Old svc"
    refused = http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert_oauth_error(refused, 401, "invalid_client")
    assert http.patch(url, json={"status": "active"}, headers=admin).status_code == 200
    assert client_credentials(http, client_id, secret)["access_token"]


def keyed_assertion(idp: IdpServer, client_id: str, key: jose.Key) -> dict[str, str]:
    """A client_credentials request authenticated with private_key_jwt, signed by ``key``."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{idp.url}/oauth2/token",
        "jti": fresh(),
        "exp": now + 60,
    }
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": jose.jwt.encode(claims, key),
    }


def test_a_client_of_private_key_jwt_is_registered_with_its_keys_and_they_are_replaced(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    first, second = jose.Key.generate("ES256", kid="2026-01"), jose.Key.generate("RS256")
    clients_url = f"/admin/tenants/{TENANT}/clients"
    response = http.post(
        clients_url,
        json={
            "name": "Batch",
            "grant_types": ["client_credentials"],
            "audience": [AUDIENCE],
            "allowed_scopes": ["demo:read"],
            "default_scopes": ["demo:read"],
            "jwks": {"keys": [first.public().to_jwk()]},
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["client_secret"] is None and made["confidential"] is True
    assert made["token_endpoint_auth_method"] == "private_key_jwt"
    assert made["jwks"] == {"keys": [first.public().to_jwk()]}
    url = f"{clients_url}/{made['id']}"
    assert http.get(url, headers=admin).json() == {
        key: value for key, value in made.items() if key != "client_secret"
    }
    token = http.post("/oauth2/token", data=keyed_assertion(idp, made["id"], first))
    assert token.status_code == 200, token.text
    assert payload(token.json()["access_token"])["sub"] == made["id"]
    assert_problem(http.post(f"{url}/rotate-secret", headers=admin), 422)

    # The keys are replaced: the old one stops working at once.
    changed = http.patch(url, json={"jwks": {"keys": [second.public().to_jwk()]}}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert [key["kid"] for key in changed.json()["jwks"]["keys"]] == [second.kid]
    old = http.post("/oauth2/token", data=keyed_assertion(idp, made["id"], first))
    assert_oauth_error(old, 401, "invalid_client")
    new = http.post("/oauth2/token", data=keyed_assertion(idp, made["id"], second))
    assert new.status_code == 200, new.text
    (row,) = [
        event
        for event in audit_events(idp.provider)
        if event.event == "client.updated" and event.client_id == made["id"]
    ]
    assert orjson.loads(row.details) == {
        "before": {"jwks": [{"kid": "2026-01", "thumbprint": first.thumbprint()}]},
        "after": {"jwks": [{"kid": second.kid, "thumbprint": second.thumbprint()}]},
    }

    before = row_counts(idp.provider)
    for body in (
        {"jwks": {"keys": [second.to_jwk(private=True)]}},
        {"jwks": {"keys": []}},
        {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}},
        {"jwks": "not an object"},
    ):
        assert_problem(http.patch(url, json=body, headers=admin), 422)
    assert row_counts(idp.provider) == before


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"jwks": {"keys": [{"kty": "EC"}]}}, "key 1: invalid JWK"),
        ({"jwks": {"keys": ["x"]}}, "key 1 is not a JSON object"),
        ({"jwks": {"keys": []}}, "a JWK Set holds 1 to 10 keys"),
        ({"jwks": {}}, "a JWK Set holds 1 to 10 keys"),
        ({"jwks": {"keys": "x"}}, "a JWK Set holds 1 to 10 keys"),
        ({"jwks": [1]}, None),
        ({"jwks": "{}"}, None),
    ],
)
def test_an_unusable_jwk_set_is_refused_and_nothing_is_written(
    idp: IdpServer,
    http: httpx.Client,
    admin: dict[str, str],
    body: dict[str, Any],
    detail: str | None,
) -> None:
    before = row_counts(idp.provider)
    response = register(http, admin, **body)
    assert_problem(response, 422)
    if detail is not None:
        assert detail in response.json()["detail"], response.text
    assert row_counts(idp.provider) == before


def test_keys_are_not_given_to_a_client_with_a_secret(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    client_id = f"svc-{fresh()}"
    idp.add_client(client_id, tenant_id=TENANT)
    url = f"/admin/tenants/{TENANT}/clients/{client_id}"
    jwks = {"keys": [jose.Key.generate("ES256").public().to_jwk()]}
    refused = http.patch(url, json={"jwks": jwks}, headers=admin)
    assert_problem(refused, 422)
    assert "only a client of private_key_jwt has a JWK Set" in refused.json()["detail"]
    read = http.get(url, headers=admin).json()
    assert (read["jwks"], read["token_endpoint_auth_method"]) == (None, "client_secret_basic")
    public = register(http, admin, confidential=False, jwks=jwks)
    assert_problem(public, 422)
    assert "a client with a JWK Set is confidential" in public.json()["detail"]


def test_tenants_are_created_read_and_changed(http: httpx.Client, root: dict[str, str]) -> None:
    tenant_id = f"t-{fresh()}"
    response = http.post("/admin/tenants", json={"id": tenant_id, "name": "Initech"}, headers=root)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/admin/tenants/{tenant_id}"
    assert response.json()["mfa_policy"] == "optional"
    again = http.post("/admin/tenants", json={"id": tenant_id, "name": "Again"}, headers=root)
    assert again.status_code == 409
    changed = http.patch(
        response.headers["location"], json={"mfa_policy": "required"}, headers=root
    )
    assert changed.status_code == 200 and changed.json()["mfa_policy"] == "required"
    assert changed.json()["name"] == "Initech"
    listed = http.get("/admin/tenants", headers=root).json()["tenants"]
    assert {"default", TENANT, tenant_id} <= {tenant["id"] for tenant in listed}
    # A new tenant comes with its admin role, ready to grant.
    roles = http.get(f"/admin/tenants/{tenant_id}/roles", headers=root).json()["roles"]
    assert [role["name"] for role in roles] == ["admin"]
    assert "admin:tenants" not in roles[0]["permissions"]
    bad = http.post("/admin/tenants", json={"id": "Not Valid!", "name": "x"}, headers=root)
    assert bad.status_code == 422
    missing = http.get("/admin/tenants/no-such-tenant/users", headers=root)
    assert missing.status_code == 404 and missing.json()["detail"] == "no such tenant"


# ---------------------------------------------------------------------------- keys


def test_keys_are_listed_without_private_material(http: httpx.Client, root: dict[str, str]) -> None:
    response = http.get("/admin/keys", headers=root)
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys and {"active"} <= {key["state"] for key in keys}
    for key in keys:
        assert set(key) == {
            "kid",
            "alg",
            "published_at",
            "activates_at",
            "retires_at",
            "expires_at",
            "state",
        }
        assert key["published_at"] <= key["activates_at"] < key["retires_at"] < key["expires_at"]


def test_an_immediate_rotation_is_picked_up_by_the_admin_guard(
    idp: IdpServer, http: httpx.Client, root: dict[str, str]
) -> None:
    old_token = root["Authorization"].split()[1]
    old_kid = jose.jwt.decode_unverified(old_token)[0]["kid"]
    response = http.post("/admin/keys/rotate", json={"immediate": True}, headers=root)
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["state"] == "active" and rotated["kid"] != old_kid
    new_token = admin_token(http, "admin", idp.admin_password)
    assert jose.jwt.decode_unverified(new_token)[0]["kid"] == rotated["kid"]
    for token in (new_token, old_token):  # the retired key still verifies its tokens
        answer = http.get("/admin/keys", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
    states = {key["kid"]: key["state"] for key in answer.json()["keys"]}
    assert states[rotated["kid"]] == "active" and states[old_kid] == "retired"
    later = http.post("/admin/keys/rotate", json={}, headers=root)
    assert later.status_code == 200 and later.json()["state"] == "next"


# ---------------------------------------------------------------------------- the guard


def test_tokens_for_another_audience_or_issuer_are_refused(
    idp: IdpServer, http: httpx.Client
) -> None:
    demo_api = password_grant(http, "admin", idp.admin_password, scope=SYSTEM_ADMIN_SCOPE)
    assert payload(demo_api["access_token"])["aud"] == AUDIENCE
    service = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    key = jose.Key.generate("ES256")
    forged = jose.jwt.encode(
        {
            **payload(demo_api["access_token"]),
            "aud": ADMIN_AUDIENCE,
            "scope": SYSTEM_ADMIN_SCOPE,
        },
        key,
        headers={"typ": "at+jwt"},
    )
    for token, code in (
        (demo_api["access_token"], "invalid_audience"),
        (service, "invalid_audience"),
        (forged, "key_not_found"),
    ):
        response = http.get("/admin/tenants", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text
        assert f'error_description="{code}"' in response.headers["www-authenticate"], code
    basic = http.get("/admin/tenants", auth=(DEMO, idp.demo_secret))
    assert basic.status_code in (400, 401)
    assert basic.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_admin_token_is_refused_at_once(
    idp: IdpServer, http: httpx.Client, root: dict[str, str]
) -> None:
    token = root["Authorization"].split()[1]
    assert http.get("/admin/tenants", headers=root).status_code == 200
    revoked = http.post("/oauth2/revoke", data={"token": token, "client_id": "web"})
    assert revoked.status_code == 200, revoked.text
    refused = http.get("/admin/tenants", headers=root)
    assert refused.status_code == 401
    assert 'error_description="revoked"' in refused.headers["www-authenticate"]
    assert token not in refused.text


# ---------------------------------------------------------------------------- unlock, reset MFA


def test_unlock_ends_a_lockout_and_forgets_the_failures(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    user = create_user(http, admin, roles=["member"])
    settings = idp.provider.settings
    with idp.provider.database.session() as session:
        row = find_user(session, TENANT, user["id"])
        for _ in range(settings.lockout_threshold):  # what many wrong passwords do
            idp.provider.lockout.failed(
                session,
                tenant_id=TENANT,
                username=user["username"],
                ip=None,
                user=row,
                context=Context(),
            )
    assert http.get(users_url(user["id"]), headers=admin).json()["status"] == "locked"
    assert_oauth_error(attempt(http, user["username"]), 429, "invalid_grant")
    response = http.post(users_url(user["id"], "unlock"), headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active" and response.json()["locked_until"] is None
    # Failures forgotten: no delay is left, a wrong password is just a wrong password.
    assert_oauth_error(attempt(http, user["username"], "not the password"), 400, "invalid_grant")
    assert login(http, user["username"])["access_token"]


def test_reset_mfa_removes_the_factor_and_its_recovery_codes(
    idp: IdpServer, http: httpx.Client, admin: dict[str, str]
) -> None:
    user = create_user(http, admin, roles=["member"])
    moment = 1_700_000_000
    with idp.provider.database.session() as session:
        row = find_user(session, TENANT, user["id"])
        enrolment = mfa.start_enrolment(
            session, idp.provider.master, row, issuer_name="Tessera", context=Context(), now=moment
        )
        code = pyotp.TOTP(enrolment.secret).at(moment)
        codes = mfa.confirm_enrolment(
            session, idp.provider.master, row, code, context=Context(), now=moment
        )
        assert codes is not None
    assert http.get(users_url(user["id"]), headers=admin).json()["mfa"] is True
    response = http.post(users_url(user["id"], "reset-mfa"), headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["mfa"] is False
    with idp.provider.database.session(readonly=True) as session:
        row = find_user(session, TENANT, user["id"])
        assert row.mfa_secret is None and row.mfa_pending is None
        assert mfa.recovery_codes_left(session, row) == 0
    assert login(http, user["username"])["access_token"]


# ---------------------------------------------------------------------------- the audit log


def audit_url(suffix: str = "") -> str:
    return f"/admin/tenants/{TENANT}/audit{suffix}"


def test_the_audit_log_is_queried_by_subject_event_and_actor(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    user = create_user(http, admin, roles=["member"])
    assert http.patch(users_url(user["id"]), json={"email": "x@ex.org"}, headers=admin).is_success
    actor = payload(admin["Authorization"].split()[1])["sub"]
    response = http.get(audit_url(), params={"subject": user["id"]}, headers=admin)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    events = response.json()["events"]
    assert [event["event"] for event in events] == ["user.created", "user.updated"]
    assert {event["actor"] for event in events} == {actor}
    assert events[1]["details"] == {"before": {"email": None}, "after": {"email": "x@ex.org"}}
    family = http.get(
        audit_url(),
        params={"subject": user["id"], "event": "user.*", "actor": actor},
        headers=admin,
    ).json()["events"]
    assert family == events
    one = http.get(
        audit_url(), params={"subject": user["id"], "event": "user.updated"}, headers=admin
    )
    assert [event["id"] for event in one.json()["events"]] == [events[1]["id"]]
    nothing = http.get(
        audit_url(), params={"subject": user["id"], "outcome": "failure"}, headers=admin
    )
    assert nothing.json() == {"events": [], "next_cursor": None}


def test_audit_pages_and_export_hold_the_same_rows(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    user = create_user(http, admin, roles=["member"])
    for index in range(4):
        http.patch(users_url(user["id"]), json={"email": f"{index}@ex.org"}, headers=admin)
    paged: list[dict[str, Any]] = []
    params: dict[str, Any] = {"subject": user["id"], "limit": 2}
    while True:
        page = http.get(audit_url(), params=params, headers=admin).json()
        assert len(page["events"]) <= 2
        paged += page["events"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(paged) == 5
    exported = http.get(audit_url("/export"), params={"subject": user["id"]}, headers=admin)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in exported.text.splitlines()]
    assert lines == paged
    after_first = http.get(
        audit_url("/export"),
        params={
            "subject": user["id"],
            "cursor": http.get(
                audit_url(), params={"subject": user["id"], "limit": 1}, headers=admin
            ).json()["next_cursor"],
        },
        headers=admin,
    )
    assert [orjson.loads(line) for line in after_first.text.splitlines()] == paged[1:]


BAD_FILTERS: list[dict[str, Any]] = [
    {"cursor": "not-a-cursor"},
    {"since": 10, "until": 5},
    {"event": "no spaces allowed"},
    {"subject": "a\x00b"},
    {"since": -1},
    {"subject": "x" * 201},
]
BAD_QUERIES = [(params, suffix) for params in BAD_FILTERS for suffix in ("", "/export")] + [
    ({"limit": 0}, ""),  # the export has no limit: it sends every match
    ({"limit": 100_000}, ""),
]


@pytest.mark.parametrize(("params", "suffix"), BAD_QUERIES)
def test_bad_audit_filters_are_a_422_problem(
    http: httpx.Client, admin: dict[str, str], params: dict[str, Any], suffix: str
) -> None:
    response = http.get(audit_url(suffix), params=params, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_no_admin_grants_an_admin_permission_they_do_not_hold(
    idp: IdpServer, http: httpx.Client
) -> None:
    """A token narrowed to admin:users and admin:roles can hand out business permissions, but
    not admin:clients — in a role, through a role, or to a client — and nothing is written."""
    narrow = admin_token(
        http,
        f"{TENANT}-admin",
        PASSWORD,
        client_id=f"{TENANT}-web",
        scope="admin:users admin:roles admin:clients",
    )
    headers = {"Authorization": f"Bearer {narrow}"}
    roles = f"/admin/tenants/{TENANT}/roles"
    name = f"r-{fresh()}"
    made = http.post(roles, json={"name": name, "permissions": ["orders:read"]}, headers=headers)
    assert made.status_code == 201, made.text
    user = create_user(http, headers)
    before = len(audit_events(idp.provider))
    refusals = [
        http.post(roles, json={"name": fresh(), "permissions": ["admin:audit"]}, headers=headers),
        http.patch(f"{roles}/{name}", json={"permissions": ["admin:audit"]}, headers=headers),
        http.post(
            f"/admin/tenants/{TENANT}/clients",
            json={
                "name": "sneaky",
                "grant_types": ["client_credentials"],
                "audience": [ADMIN_AUDIENCE],
                "allowed_scopes": ["admin:audit"],
            },
            headers=headers,
        ),
    ]
    refusals.append(
        http.put(users_url(user["id"], "roles"), json={"roles": ["admin"]}, headers=headers)
    )
    for refused in refusals:
        assert refused.status_code == 403, refused.text
        problem = refused.json()
        assert problem["code"] == "forbidden"
        assert problem["detail"] == "cannot grant admin:audit, which you do not hold"
    assert len(audit_events(idp.provider)) == before
    # Business permissions are the tenant admin's to give.
    granted = http.put(users_url(user["id"], "roles"), json={"roles": [name]}, headers=headers)
    assert (granted.status_code, granted.json()["roles"]) == (200, [name])


def test_the_super_admin_reads_every_tenants_audit_and_the_systems(
    idp: IdpServer, http: httpx.Client, root: dict[str, str], admin: dict[str, str]
) -> None:
    rotated = http.post("/admin/keys/rotate", json={"immediate": False}, headers=root)
    assert rotated.status_code == 200, rotated.text
    system = http.get("/admin/audit", params={"tenant": "*", "event": "key.*"}, headers=root)
    assert system.status_code == 200, system.text
    assert "key.rotated" in {event["event"] for event in system.json()["events"]}
    assert {event["tenant"] for event in system.json()["events"]} == {"*"}
    every = http.get("/admin/audit", params={"limit": 1000}, headers=root).json()["events"]
    assert {"*", "default", TENANT} <= {event["tenant"] for event in every}
    # A tenant's admin never; a system-tenant token with admin:audit alone neither.
    assert http.get("/admin/audit", headers=admin).status_code == 403
    auditor = admin_token(http, "admin", idp.admin_password, scope="admin:audit")
    refused = http.get("/admin/audit", headers={"Authorization": f"Bearer {auditor}"})
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
