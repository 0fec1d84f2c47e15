"""``private_key_jwt`` client authentication (RFC 7523 §2.2, OpenID Connect Core §9) over real
HTTP, on SQLite and PostgreSQL: a client that registered a public JWK Set gets tokens with an
assertion signed by one of its keys — made by Tessera, by Authlib's ``PrivateKeyJWT``, by PyJWT
and by joserfc — at the token, revocation and introspection endpoints. Every assertion that is
wrong in any way is the same 401 ``invalid_client``, which never echoes it, and writes nothing;
an assertion is used once, even by two requests at the same instant."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import select

from tessera import jose
from tessera.idp.services.authorization_codes import CodeGrant
from tessera.idp.services.client_assertions import JWT_BEARER
from tessera.idp.services.clients import create_client
from tessera.idp.store.models import Client, ClientAssertion

from ..conftest import row_counts
from .checks import assert_no_store, assert_oauth_error, payload
from .servers import AUDIENCE, BOTH_DATABASES, CHEAP_ARGON2, DEMO, IdpServer

with warnings.catch_warnings():  # Authlib 1.x's client beside its deprecated jose
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, **CHEAP_ARGON2)

REDIRECT = "https://app.example/callback"
GENERIC = {"error": "invalid_client", "error_description": "client authentication failed"}


@dataclass(frozen=True)
class KeyedClient:
    """A client of private_key_jwt as a test holds it: its id and its private key."""

    id: str
    key: jose.Key


def keyed_client(
    idp: IdpServer,
    alg: str = "ES256",
    *,
    grant_types: tuple[str, ...] = ("client_credentials",),
    key: jose.Key | None = None,
    jwks: dict[str, Any] | None = None,
    first_party: bool = False,
) -> KeyedClient:
    """A client that registered the public half of ``key`` (a new one for ``alg`` by default)."""
    key = key or jose.Key.generate(alg)
    code_flow = "authorization_code" in grant_types
    with idp.provider.database.session() as session:
        made = create_client(
            session,
            idp.provider.master,
            tenant_id="default",
            name="keyed",
            grant_types=grant_types,
            audience=(AUDIENCE,),
            allowed_scopes=("demo:read",),
            default_scopes=("demo:read",),
            redirect_uris=(REDIRECT,) if code_flow else (),
            first_party=first_party,
            jwks=jwks or {"keys": [key.public().to_jwk()]},
        )
        assert made.secret is None and made.client.secret_hash is None
        return KeyedClient(made.client.id, key)


def assertion(
    idp: IdpServer,
    client: KeyedClient,
    *,
    key: jose.Key | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """An assertion of ``client`` signed by Tessera's jose; a claim given as ``None`` is left
    out."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client.id,
        "sub": client.id,
        "aud": f"{idp.url}/oauth2/token",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 60,
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    return jose.jwt.encode(body, key or client.key, headers=header)


def form_of(signed: str, **form: str) -> dict[str, str]:
    return {"client_assertion_type": JWT_BEARER, "client_assertion": signed, **form}


def token_request(http: httpx.Client, signed: str, **form: str) -> httpx.Response:
    data = form_of(signed, **form)
    data.setdefault("grant_type", "client_credentials")
    return http.post("/oauth2/token", data=data)


def spent(idp: IdpServer, client_id: str) -> list[tuple[str, int]]:
    """The assertion ids of ``client_id`` remembered as used, with their expiry."""
    with idp.provider.database.session(readonly=True) as session:
        rows = session.scalars(
            select(ClientAssertion).where(ClientAssertion.client_id == client_id)
        )
        return sorted((row.jti, row.expires_at) for row in rows)


def assert_refused(response: httpx.Response, *secrets: str) -> None:
    """The one answer to a failed client authentication, which repeats nothing it was sent."""
    assert_oauth_error(response, 401, "invalid_client")
    assert_no_store(response)
    assert response.json() == GENERIC
    assert response.headers["www-authenticate"] == 'Basic realm="tessera"'
    for secret in secrets:
        for part in secret.split("."):
            assert len(part) < 8 or part not in response.text


# ------------------------------------------------------------------ what works


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "ES384", "ES512", "EdDSA"])
def test_a_keyed_client_gets_tokens_by_client_credentials(
    idp: IdpServer, http: httpx.Client, alg: str
) -> None:
    client = keyed_client(idp, alg)
    signed = assertion(idp, client)
    response = token_request(http, signed, scope="demo:read")
    assert response.status_code == 200, response.text
    assert_no_store(response)
    claims = payload(response.json()["access_token"])
    assert claims["sub"] == claims["client_id"] == client.id and claims["aud"] == AUDIENCE
    ((jti, expires_at),) = spent(idp, client.id)
    assert (jti, expires_at) == (payload(signed)["jti"], payload(signed)["exp"])


def test_the_issuer_is_an_audience_too_and_client_id_may_be_sent(
    idp: IdpServer, http: httpx.Client
) -> None:
    client = keyed_client(idp)
    by_issuer = assertion(idp, client, aud=idp.url)
    assert token_request(http, by_issuer, client_id=client.id).status_code == 200
    among_others = assertion(idp, client, aud=["https://other.example", f"{idp.url}/oauth2/token"])
    assert token_request(http, among_others).status_code == 200
    # Made by a client whose clock is a few seconds ahead of ours.
    ahead = int(time.time()) + 5
    assert (
        token_request(http, assertion(idp, client, iat=ahead, exp=ahead + 300)).status_code == 200
    )
    # A key without kid is named by its thumbprint; an assertion may leave kid out.
    no_kid = assertion(idp, client, header={"kid": None})
    assert token_request(http, no_kid).status_code == 200


def signed_in(idp: IdpServer, client_id: str, verifier: str, nonce: str) -> tuple[str, str]:
    """What the authorization endpoint does: a user signed in, a code for the client. Returns
    (user id, code)."""
    user_id = idp.add_user(f"user-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}")
    grant = CodeGrant(
        tenant_id="default",
        client_id=client_id,
        user_id=user_id,
        redirect_uri=REDIRECT,
        scope="openid demo:read",
        code_challenge=create_s256_code_challenge(verifier),
        auth_time=int(time.time()),
        amr="pwd",
        nonce=nonce,
    )
    with idp.provider.database.session() as session:
        return user_id, idp.provider.codes.issue(session, grant, now=int(time.time()))


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_code_is_redeemed_and_refreshed_with_private_key_jwt(
    idp: IdpServer, http: httpx.Client, alg: str
) -> None:
    client = keyed_client(idp, alg, grant_types=("authorization_code", "refresh_token"))
    verifier = generate_token(64)
    user_id, code = signed_in(idp, client.id, verifier, "n-1")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    response = token_request(http, assertion(idp, client), **form)
    assert response.status_code == 200, response.text
    tokens = response.json()
    id_token = payload(tokens["id_token"])
    assert (id_token["sub"], id_token["aud"], id_token["nonce"]) == (user_id, client.id, "n-1")

    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    # By its id alone, as if it were public: refused, and the refresh token still works.
    assert_refused(http.post("/oauth2/token", data={**refresh, "client_id": client.id}))
    refreshed = token_request(http, assertion(idp, client), **refresh)
    assert refreshed.status_code == 200, refreshed.text
    assert payload(refreshed.json()["access_token"])["sub"] == user_id


def test_revocation_and_introspection_take_an_assertion(idp: IdpServer, http: httpx.Client) -> None:
    client = keyed_client(idp)
    token = token_request(http, assertion(idp, client)).json()["access_token"]
    described = http.post("/oauth2/introspect", data=form_of(assertion(idp, client), token=token))
    assert described.status_code == 200, described.text
    assert described.json()["active"] is True and described.json()["client_id"] == client.id
    # The same assertion twice, even at another endpoint: the second is a replay.
    once = assertion(idp, client)
    assert http.post("/oauth2/revoke", data=form_of(once, token=token)).status_code == 200
    assert_refused(http.post("/oauth2/introspect", data=form_of(once, token=token)), once)
    again = http.post("/oauth2/introspect", data=form_of(assertion(idp, client), token=token))
    assert again.json() == {"active": False}


def test_an_assertion_is_spent_even_when_its_request_is_refused(
    idp: IdpServer, http: httpx.Client
) -> None:
    client = keyed_client(idp)
    signed = assertion(idp, client)
    refused = token_request(http, signed, grant_type="password", username="x", password="y")
    assert_oauth_error(refused, 400, "unauthorized_client")
    assert_refused(token_request(http, signed), signed)


# ------------------------------------------------------------------ made by other libraries


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]  # Authlib is untyped
    """Authlib's ``PrivateKeyJWT`` with a one-minute assertion: its default lives an hour, which
    Tessera refuses (five minutes at most). The claims are made anew for each request: Authlib
    adds its jti to the dict it was given, which would send the same jti twice."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        self.claims = {"exp": int(time.time()) + 60}
        signed: str = super().sign(auth, token_endpoint)
        return signed


def authlib_client(key: Any, client: KeyedClient, **options: Any) -> OAuth2Client:
    """Authlib's OAuth 2.0 client holding ``key`` for ``client`` (the auth method is registered
    by the caller)."""
    return OAuth2Client(
        client.id, key, token_endpoint_auth_method="private_key_jwt", timeout=10, **options
    )


def test_authlib_authenticates_with_an_rsa_key_for_client_credentials(idp: IdpServer) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "authlib-rsa"})
    jwk = key.as_dict(private=False)
    client = keyed_client(idp, key=jose.Key.generate("ES256"), jwks={"keys": [jwk]})
    url = f"{idp.url}/oauth2/token"
    with authlib_client(key, client) as oauth:
        oauth.register_client_auth_method(ShortLivedPrivateKeyJWT(url, alg="RS256"))
        token = oauth.fetch_token(url, grant_type="client_credentials")
        assert payload(token["access_token"])["sub"] == client.id
        again = oauth.fetch_token(url, grant_type="client_credentials")
        assert again["access_token"] != token["access_token"]
    assert len(spent(idp, client.id)) == 2

    # Authlib's own default: an assertion that lives an hour, refused.
    with authlib_client(key, client) as oauth:
        oauth.register_client_auth_method(PrivateKeyJWT(url, alg="RS256"))
        with pytest.raises(OAuthError) as refused:
            oauth.fetch_token(url, grant_type="client_credentials")
        assert refused.value.error == "invalid_client"
    assert len(spent(idp, client.id)) == 2


def test_authlib_redeems_a_code_and_refreshes_with_an_ec_key(idp: IdpServer) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "authlib-ec"})
    jwk = key.as_dict(private=False)
    client = keyed_client(
        idp,
        key=jose.Key.generate("ES256"),
        jwks={"keys": [jwk]},
        grant_types=("authorization_code", "refresh_token"),
    )
    verifier = generate_token(64)
    user_id, code = signed_in(idp, client.id, verifier, "n-2")
    url = f"{idp.url}/oauth2/token"
    with authlib_client(key, client, redirect_uri=REDIRECT) as oauth:
        oauth.register_client_auth_method(ShortLivedPrivateKeyJWT(url, alg="ES256"))
        token = oauth.fetch_token(url, code=code, code_verifier=verifier)
        assert payload(token["id_token"])["sub"] == user_id
        refreshed = oauth.refresh_token(url)
        assert refreshed["refresh_token"] != token["refresh_token"]
    assert len(spent(idp, client.id)) == 2


def test_pyjwt_signs_an_assertion_with_ps256(idp: IdpServer, http: httpx.Client) -> None:
    key = jose.Key.generate("PS256", kid="pyjwt-1")
    client = keyed_client(idp, key=key)
    now = int(time.time())
    claims = {
        "iss": client.id,
        "sub": client.id,
        "aud": f"{idp.url}/oauth2/token",
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 120,
    }
    signed = pyjwt.encode(
        claims, key.to_pem(private=True), algorithm="PS256", headers={"kid": "pyjwt-1"}
    )
    assert token_request(http, signed).status_code == 200
    assert_refused(token_request(http, signed), signed)


def test_joserfc_signs_an_assertion_with_es384(idp: IdpServer, http: httpx.Client) -> None:
    key = ECKey.generate_key("P-384")
    client = keyed_client(
        idp, key=jose.Key.generate("ES256"), jwks={"keys": [key.as_dict(private=False)]}
    )
    now = int(time.time())
    claims = {
        "iss": client.id,
        "sub": client.id,
        "aud": [idp.url],
        "jti": generate_token(24),
        "nbf": now,
        "exp": now + 30,
    }
    signed = joserfc_jwt.encode({"alg": "ES384"}, claims, key, algorithms=["ES384"])
    assert token_request(http, signed, client_id=client.id).status_code == 200
    assert_refused(token_request(http, signed), signed)


# ------------------------------------------------------------------ refusals


def _claims(idp: IdpServer, client: KeyedClient) -> dict[str, Any]:
    return {
        "iss": client.id,
        "sub": client.id,
        "aud": f"{idp.url}/oauth2/token",
        "jti": uuid.uuid4().hex,
        "exp": int(time.time()) + 60,
    }


def _hand_made(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    """A compact JWS put together by hand (what Tessera's jose refuses to make)."""
    encoded = [jose.b64.encode_str(jose.json.dumps(part)) for part in (header, claims)]
    signing_input = ".".join(encoded).encode()
    return ".".join([*encoded, jose.b64.encode_str(sign(signing_input))])


def _hs256_with_the_public_key(idp: IdpServer, client: KeyedClient) -> str:
    """The classic confusion: HS256 keyed with the bytes of the client's public key."""
    public = client.key.public().to_pem()
    return _hand_made(
        {"alg": "HS256", "kid": client.key.kid},
        _claims(idp, client),
        lambda data: hmac.new(public, data, hashlib.sha256).digest(),
    )


def _unsigned(idp: IdpServer, client: KeyedClient) -> str:
    return _hand_made({"alg": "none"}, _claims(idp, client), lambda data: b"")


def _unknown_critical_header(idp: IdpServer, client: KeyedClient) -> str:
    header = {"alg": "ES256", "kid": client.key.kid, "crit": ["urn:x"], "urn:x": 1}
    return _hand_made(header, _claims(idp, client), client.key.signer("ES256"))


def _secret_client(idp: IdpServer) -> str:
    client_id = f"svc-{uuid.uuid4().hex[:8]}"
    idp.add_client(client_id)
    return client_id


REFUSALS: dict[str, Any] = {
    "wrong aud": lambda idp, c: assertion(idp, c, aud="https://other.example/oauth2/token"),
    "aud of the revocation endpoint": lambda idp, c: assertion(
        idp, c, aud=f"{idp.url}/oauth2/revoke"
    ),
    "no aud": lambda idp, c: assertion(idp, c, aud=None),
    "expired": lambda idp, c: assertion(
        idp, c, iat=int(time.time()) - 120, exp=int(time.time()) - 1
    ),
    "exp too far": lambda idp, c: assertion(idp, c, exp=int(time.time()) + 3600),
    "exp too far without iat": lambda idp, c: assertion(
        idp, c, iat=None, exp=int(time.time()) + 330
    ),
    "lives longer than five minutes": lambda idp, c: assertion(
        idp, c, iat=int(time.time()) - 200, exp=int(time.time()) + 200
    ),
    "no exp": lambda idp, c: assertion(idp, c, exp=None),
    "issued in the future": lambda idp, c: assertion(
        idp, c, iat=int(time.time()) + 120, exp=int(time.time()) + 180
    ),
    "not yet valid": lambda idp, c: assertion(idp, c, nbf=int(time.time()) + 120),
    "no jti": lambda idp, c: assertion(idp, c, jti=None),
    "empty jti": lambda idp, c: assertion(idp, c, jti=""),
    "overlong jti": lambda idp, c: assertion(idp, c, jti="j" * 256),
    "iss is not sub": lambda idp, c: assertion(idp, c, sub=DEMO),
    "no sub": lambda idp, c: assertion(idp, c, sub=None),
    "iss of a secret client": lambda idp, c: assertion(idp, c, iss=DEMO, sub=DEMO),
    "unknown kid": lambda idp, c: assertion(idp, c, header={"kid": "no-such-key"}),
    "key not registered": lambda idp, c: assertion(
        idp, c, key=jose.Key.generate("ES256"), header={"kid": None}
    ),
    "key not registered under the registered kid": lambda idp, c: assertion(
        idp, c, key=jose.Key.generate("ES256", kid=c.key.kid)
    ),
    "alg none": _unsigned,
    "HS256 with the public key": _hs256_with_the_public_key,
    "unknown critical header": _unknown_critical_header,
    "a bad signature": lambda idp, c: assertion(idp, c)[:-4] + "AAAA",
    "garbage": lambda idp, c: "garbage",
    "three garbage parts": lambda idp, c: "a.b.c",
    "an access token of ours": lambda idp, c: (
        idp.provider.issuer.issue(
            tenant_id="default", subject=c.id, client_id=c.id, scope=(), audience=AUDIENCE
        ).token
    ),
}


def test_a_hand_made_assertion_is_accepted_when_nothing_is_wrong(
    idp: IdpServer, http: httpx.Client
) -> None:
    """The baseline of the hand-made refusals: only what each one changes is wrong."""
    client = keyed_client(idp)
    header = {"alg": "ES256", "kid": client.key.kid}
    signed = _hand_made(header, _claims(idp, client), client.key.signer("ES256"))
    assert token_request(http, signed).status_code == 200


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_wrong_assertion_is_invalid_client_and_writes_nothing(
    idp: IdpServer, http: httpx.Client, case: str
) -> None:
    client = keyed_client(idp)
    signed = REFUSALS[case](idp, client)
    before = row_counts(idp.provider)
    assert_refused(token_request(http, signed), signed)
    assert row_counts(idp.provider) == before
    # The client itself is fine: a right assertion still works.
    assert token_request(http, assertion(idp, client)).status_code == 200


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS512"])
def test_a_registered_key_used_with_an_algorithm_outside_the_allowlist_is_refused(
    idp: IdpServer, http: httpx.Client, alg: str
) -> None:
    # A key bound to no algorithm: RSA, so it could sign any RS* or PS*.
    key = jose.Key(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid="rsa")
    client = keyed_client(idp, key=key)
    signed = jose.jwt.encode(
        {"iss": client.id, "sub": client.id, "aud": idp.url, "jti": "j", "exp": time.time() + 60},
        key,
        alg=alg,
    )
    before = row_counts(idp.provider)
    assert_refused(token_request(http, signed), signed)
    assert row_counts(idp.provider) == before
    assert token_request(http, assertion(idp, client)).status_code == 200  # RS256 is fine


def test_a_replayed_assertion_is_refused_and_writes_nothing(
    idp: IdpServer, http: httpx.Client
) -> None:
    client = keyed_client(idp)
    signed = assertion(idp, client)
    assert token_request(http, signed).status_code == 200
    before = row_counts(idp.provider)
    for _ in range(2):
        assert_refused(token_request(http, signed), signed)
    assert row_counts(idp.provider) == before
    # Another client may use the same jti: it is unique per client.
    other = keyed_client(idp)
    assert token_request(http, assertion(idp, other, jti=payload(signed)["jti"])).status_code == 200


def test_one_assertion_sent_twice_at_once_is_accepted_once(idp: IdpServer) -> None:
    client = keyed_client(idp)
    for _ in range(8):
        signed = assertion(idp, client)

        def send(_: int, signed: str = signed) -> httpx.Response:
            with idp.client() as http:
                return token_request(http, signed)

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(send, range(2)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 401], [answer.text for answer in answers]
        assert_refused(next(answer for answer in answers if answer.status_code == 401), signed)
    assert len(spent(idp, client.id)) == 8


def test_a_keyed_client_cannot_use_a_secret_or_its_id_alone(
    idp: IdpServer, http: httpx.Client
) -> None:
    client = keyed_client(idp)
    before = row_counts(idp.provider)
    form = {"grant_type": "client_credentials"}
    for response in (
        http.post("/oauth2/token", data=form, auth=(client.id, "a-guessed-secret")),
        http.post("/oauth2/token", data=form, auth=(client.id, "")),
        http.post("/oauth2/token", data={**form, "client_id": client.id, "client_secret": "x"}),
        http.post("/oauth2/token", data={**form, "client_id": client.id}),
        http.post("/oauth2/revoke", data={"token": "t", "client_id": client.id}),
        http.post("/oauth2/introspect", data={"token": "t", "client_id": client.id}),
    ):
        assert_oauth_error(response, 401, "invalid_client")
    assert row_counts(idp.provider) == before


def test_a_keyed_first_party_client_is_no_browser_login_client(
    idp: IdpServer, http: httpx.Client
) -> None:
    """A browser holds no key: the cookie login is for public first-party clients only."""
    client = keyed_client(idp, grant_types=("password", "refresh_token"), first_party=True)
    username, password = f"u-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    idp.add_user(username, password)
    form = {"username": username, "password": password, "client_id": client.id}
    assert_oauth_error(http.post("/auth/login", data=form), 400, "unauthorized_client")
    # At the token endpoint, with an assertion, the password grant is its to use.
    signed = assertion(idp, client)
    granted = token_request(
        http, signed, grant_type="password", username=username, password=password
    )
    assert granted.status_code == 200, granted.text


def test_a_secret_client_cannot_use_an_assertion(idp: IdpServer, http: httpx.Client) -> None:
    secret_client = KeyedClient(_secret_client(idp), jose.Key.generate("ES256"))
    signed = assertion(idp, secret_client)
    before = row_counts(idp.provider)
    assert_refused(token_request(http, signed), signed)
    assert row_counts(idp.provider) == before


def test_a_disabled_keyed_client_is_refused(idp: IdpServer, http: httpx.Client) -> None:
    client = keyed_client(idp)
    with idp.provider.database.session() as session:
        row = session.get(Client, client.id)
        assert row is not None
        row.status = "disabled"
    idp.provider.clients.forget(client.id)
    signed = assertion(idp, client)
    assert_refused(token_request(http, signed), signed)


def test_the_form_must_agree_with_the_assertion(idp: IdpServer, http: httpx.Client) -> None:
    client = keyed_client(idp)
    before = row_counts(idp.provider)
    signed = assertion(idp, client)
    assert_refused(token_request(http, signed, client_id=DEMO), signed)
    wrong_type = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    }
    assert_refused(token_request(http, signed, **wrong_type), signed)
    no_assertion = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER}
    assert_refused(http.post("/oauth2/token", data=no_assertion))
    no_type = {"grant_type": "client_credentials", "client_assertion": signed}
    assert_refused(http.post("/oauth2/token", data=no_type), signed)
    # Two ways of authenticating at once: a malformed request.
    with_basic = http.post(
        "/oauth2/token",
        data=form_of(signed, grant_type="client_credentials"),
        auth=(DEMO, idp.demo_secret),
    )
    assert_oauth_error(with_basic, 400, "invalid_request")
    with_secret = token_request(http, signed, client_id=client.id, client_secret="x")
    assert_oauth_error(with_secret, 400, "invalid_request")
    assert row_counts(idp.provider) == before
    assert token_request(http, signed).status_code == 200  # never spent by those


def test_discovery_names_private_key_jwt_and_its_algorithms(http: httpx.Client) -> None:
    metadata = http.get("/.well-known/openid-configuration").json()
    algs = ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"]
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]
    assert metadata["revocation_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]
    assert metadata["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    for endpoint in ("token", "revocation", "introspection"):
        assert metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == algs
