"""UserInfo over real HTTP (GET and POST): ``sub`` and the claims each granted scope releases,
no-store; refusals are RFC 6750's (a bare challenge, ``invalid_token``, ``insufficient_scope``)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tessera.idp.flows.revoke import log_out_everywhere
from tessera.idp.services.audit import Context
from tessera.idp.store.models import User

from .checks import assert_no_store
from .servers import BOTH_DATABASES, IdpServer
from .test_code_grant import REDIRECT, rp, signed_in

pytestmark = pytest.mark.idp(databases=BOTH_DATABASES)
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def tokens(idp: IdpServer, scope: str, email: str | None = None) -> tuple[str, dict[str, Any]]:
    """A user signed in through the code grant with ``scope``: (user id, token answer)."""
    client_id, secret = rp(idp)
    user_id, code = signed_in(idp, client_id, VERIFIER, "n", scope=scope, email=email)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    with idp.client() as http:
        answer = http.post("/oauth2/token", data=form, auth=(client_id, secret))
    assert answer.status_code == 200, answer.text
    return user_id, answer.json()


def bearer(answer: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {answer['access_token']}"}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_scopes_release_their_claims(idp: IdpServer, http: httpx.Client, method: str) -> None:
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    user_id, answer = tokens(idp, "openid profile email", email)
    response = http.request(method, "/oauth2/userinfo", headers=bearer(answer))
    assert response.status_code == 200, response.text
    assert_no_store(response)
    with idp.provider.database.session(readonly=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        expected = {
            "sub": user_id,
            "preferred_username": user.username,
            "updated_at": user.updated_at,
            "email": email,
            "email_verified": False,  # Tessera does not verify addresses
        }
    assert response.json() == expected


def test_openid_alone_releases_the_subject_only(idp: IdpServer, http: httpx.Client) -> None:
    user_id, answer = tokens(idp, "openid", "bob@example.com")
    assert http.get("/oauth2/userinfo", headers=bearer(answer)).json() == {"sub": user_id}


def test_a_claim_the_user_lacks_is_left_out(idp: IdpServer, http: httpx.Client) -> None:
    user_id, answer = tokens(idp, "openid email")
    assert http.get("/oauth2/userinfo", headers=bearer(answer)).json() == {"sub": user_id}


def test_a_token_without_openid_is_insufficient_scope(idp: IdpServer, http: httpx.Client) -> None:
    _, answer = tokens(idp, "demo:read")
    response = http.get("/oauth2/userinfo", headers=bearer(answer))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="openid"' in challenge


def test_no_token_gets_a_bare_challenge_and_a_bad_one_invalid_token(
    http: httpx.Client,
) -> None:
    bare = http.get("/oauth2/userinfo")
    assert (bare.status_code, bare.headers["www-authenticate"]) == (401, 'Bearer realm="tessera"')
    bad = http.post("/oauth2/userinfo", headers={"Authorization": "Bearer a.b.c"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]


def test_a_logged_out_or_disabled_user_learns_nothing(idp: IdpServer, http: httpx.Client) -> None:
    user_id, answer = tokens(idp, "openid profile")
    with idp.provider.database.session() as session:
        log_out_everywhere(idp.provider, session, "default", user_id, Context(actor="test"))
    refused = http.get("/oauth2/userinfo", headers=bearer(answer))
    assert refused.status_code == 401 and "invalid_token" in refused.headers["www-authenticate"]

    user_id, answer = tokens(idp, "openid profile")
    with idp.provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.status = "disabled"
    refused = http.get("/oauth2/userinfo", headers=bearer(answer))
    assert refused.status_code == 401 and "invalid_token" in refused.headers["www-authenticate"]


def test_a_post_may_carry_the_token_in_its_form_body_but_not_twice(
    idp: IdpServer, http: httpx.Client
) -> None:
    user_id, answer = tokens(idp, "openid")
    form = {"access_token": answer["access_token"]}
    response = http.post("/oauth2/userinfo", data=form)  # RFC 6750 §2.2 (pyoidc's default)
    assert response.status_code == 200 and response.json() == {"sub": user_id}
    both = http.post("/oauth2/userinfo", data=form, headers=bearer(answer))
    assert both.status_code == 400 and 'error="invalid_request"' in both.headers["www-authenticate"]
    forged = http.post("/oauth2/userinfo", data={"access_token": "a.b.c"})
    assert forged.status_code == 401 and "invalid_token" in forged.headers["www-authenticate"]
    in_query = http.get("/oauth2/userinfo", params=form)
    assert in_query.status_code == 400  # never in the query (RFC 6750 §2.3 is not offered)
