"""The provider reads its own tokens by the same type rule as every verifier: a correctly signed
token with an ill-typed claim is refused with a typed answer on every route that takes one —
never a 500 (a null ``iat`` on a subject with a not-before used to raise ``TypeError``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.jose.forge import forge

from .checks import payload
from .servers import DEMO, IdpServer, admin_token, client_credentials, introspect


def forge_own(idp: IdpServer, token: str, **changes: Any) -> str:
    """The claims of ``token`` with ``changes`` — even ones ``jwt.encode`` refuses to mint —
    signed by the provider's own active key, with its header."""
    key = idp.provider.keyring.signing_key()
    header = {"alg": key.default_alg, "typ": "at+jwt", "kid": key.kid}
    return forge(header, {**payload(token), **changes}, key)


@pytest.fixture(scope="module")
def admin(idp: IdpServer) -> Iterator[str]:
    with idp.client() as http:
        yield admin_token(http, "admin", idp.admin_password)


ILL_TYPED = [
    ("iat", None),
    ("iat", "1700000000"),
    ("exp", None),
    ("exp", 1e308),
    ("sub", None),
    ("jti", 7),
    ("tenant", None),
    ("client_id", ["web"]),
    ("scope", ["admin:users"]),
]


@pytest.mark.parametrize("path", ["/admin/tenants", "/auth/mfa"], ids=["admin", "self-service"])
@pytest.mark.parametrize(("claim", "value"), ILL_TYPED)
def test_bearer_routes_answer_401_to_an_ill_typed_token(
    idp: IdpServer, http: httpx.Client, admin: str, path: str, claim: str, value: Any
) -> None:
    token = forge_own(idp, admin, **{claim: value})
    answer = http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401, answer.text
    assert token not in answer.text
    if path.startswith("/admin"):
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    else:
        assert answer.json()["error"] == "invalid_token"
    assert http.get(path, headers={"Authorization": f"Bearer {admin}"}).status_code == 200


def test_a_null_iat_after_a_logout_everywhere_is_401_not_500(
    idp: IdpServer, http: httpx.Client, admin: str
) -> None:
    claims = payload(admin)
    provider = idp.provider
    token = forge_own(idp, admin, iat=None)
    with provider.database.session() as session:
        provider.revocations.log_out_everywhere(
            session, claims["tenant"], claims["sub"], int(time.time()) - 3600
        )
    assert http.get("/admin/tenants", headers={"Authorization": f"Bearer {admin}"}).is_success
    answer = http.get("/admin/tenants", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401, answer.text
    # The database check itself reads iat for what it is, whoever calls it.
    with provider.database.session(readonly=True) as session:
        for iat in (None, "soon", True):
            assert provider.revocations.is_revoked(session, {**claims, "iat": iat}) is True
        assert provider.revocations.is_revoked(session, claims) is False


@pytest.mark.parametrize(("claim", "value"), ILL_TYPED)
def test_introspection_reports_an_ill_typed_token_inactive(
    idp: IdpServer, http: httpx.Client, claim: str, value: Any
) -> None:
    own = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    assert introspect(http, own, DEMO, idp.demo_secret)["active"] is True
    token = forge_own(idp, own, **{claim: value})
    assert introspect(http, token, DEMO, idp.demo_secret) == {"active": False}


@pytest.mark.parametrize(("claim", "value"), ILL_TYPED)
def test_revoking_an_ill_typed_token_is_200_and_revokes_nothing(
    idp: IdpServer, http: httpx.Client, claim: str, value: Any
) -> None:
    own = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    token = forge_own(idp, own, **{claim: value})
    answer = http.post("/oauth2/revoke", data={"token": token}, auth=(DEMO, idp.demo_secret))
    assert answer.status_code == 200, answer.text
    assert introspect(http, own, DEMO, idp.demo_secret)["active"] is True
