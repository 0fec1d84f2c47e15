"""ID tokens: the claims OpenID Connect Core §2 names, signed with the client's algorithm by a
key the JWKS publishes, and accepted by what relying parties use (Authlib's OIDC claim checks,
PyJWT, joserfc)."""

from __future__ import annotations

import hashlib
import time
import warnings

import joserfc.jwk
import joserfc.jwt
import jwt as pyjwt
import pytest
from authlib.deprecate import AuthlibDeprecationWarning

# Authlib 1.x's OpenID Connect client still checks ID tokens with authlib.jose: what RPs run today.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt
    from authlib.oidc.core import CodeIDToken

from tessera import jose
from tessera.idp.provider import Provider
from tessera.idp.services.id_tokens import ID_TOKEN_ALGS, SignIn, at_hash

from ..conftest import ISSUER

CLIENT = "web-app"
ACCESS_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"
SIGN_IN = SignIn(
    subject="6f1c2b9e-7d1a-4b7e-9a55-0c1f2e3d4a5b",
    auth_time=1_800_000_000 - 30,
    amr=("pwd", "otp"),
    acr="mfa",
    session_id="3b0f1d4e-2c6a-4d8f-b1e7-5a9c8d7e6f50",
)
NOW = 1_800_000_000


def mint(provider: Provider, alg: str = "RS256", **options: object) -> str:
    return provider.id_tokens.issue(
        SIGN_IN,
        client_id=CLIENT,
        alg=alg,
        nonce="n-0S6_WzA2Mj",
        access_token=ACCESS_TOKEN,
        now=NOW,
        **options,  # type: ignore[arg-type]
    )


def test_an_id_token_says_who_signed_in_when_and_how(provider: Provider) -> None:
    token = mint(provider, claims={"name": "Ada Lovelace", "sub": "forged", "iss": "forged"})
    header, claims = jose.jwt.decode_unverified(token)
    assert header["alg"] == "RS256"
    assert claims == {
        "iss": ISSUER,
        "sub": SIGN_IN.subject,
        "aud": CLIENT,
        "exp": NOW + 3600,
        "iat": NOW,
        "auth_time": SIGN_IN.auth_time,
        "nonce": "n-0S6_WzA2Mj",
        "acr": "mfa",
        "amr": ["pwd", "otp"],
        "sid": SIGN_IN.session_id,
        "at_hash": at_hash(ACCESS_TOKEN, "RS256"),
        "name": "Ada Lovelace",  # a user claim; the registered ones above cannot be overridden
    }


def test_what_is_unknown_is_left_out(provider: Provider) -> None:
    bare = provider.id_tokens.issue(
        SignIn(subject="ada", auth_time=NOW, amr=()), client_id=CLIENT, now=NOW
    )
    _, claims = jose.jwt.decode_unverified(bare)
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "auth_time"}


@pytest.mark.parametrize("alg", ID_TOKEN_ALGS)
def test_each_algorithm_signs_with_a_published_key_of_its_own(provider: Provider, alg: str) -> None:
    token = mint(provider, alg)
    header, _ = jose.jwt.decode_unverified(token)
    assert header["alg"] == alg
    jwks = provider.keyring.jwks(NOW)
    (published,) = [jwk for jwk in jwks["keys"] if jwk["kid"] == header["kid"]]
    assert published["alg"] == alg
    verifier = jose.Verifier(
        jose.KeySet.from_jwks(jwks), algorithms=[alg], issuer=ISSUER, audience=CLIENT
    )
    assert verifier.verify(token, now=NOW + 1)["sub"] == SIGN_IN.subject


def test_at_hash_is_the_left_half_of_the_algorithms_hash() -> None:
    for alg, hash_of in [("RS256", hashlib.sha256), ("ES384", hashlib.sha384)]:
        digest = hash_of(ACCESS_TOKEN.encode()).digest()
        assert jose.b64.decode(at_hash(ACCESS_TOKEN, alg)) == digest[: len(digest) // 2]
    assert len(jose.b64.decode(at_hash(ACCESS_TOKEN, "EdDSA"))) == 32  # SHA-512, halved


def test_an_algorithm_no_id_token_is_signed_with_is_refused(provider: Provider) -> None:
    with pytest.raises(ValueError, match="ID tokens are not signed with HS256"):
        mint(provider, "HS256")


def test_authlib_validates_it_as_a_relying_party_does(provider: Provider) -> None:
    """Authlib's code-flow checks: iss, aud, exp, iat, nonce, auth_time, at_hash."""
    token = provider.id_tokens.issue(
        SIGN_IN,
        client_id=CLIENT,
        nonce="n-0S6_WzA2Mj",
        access_token=ACCESS_TOKEN,
    )
    keys = JsonWebKey.import_key_set(provider.keyring.jwks())
    claims = authlib_jwt.decode(
        token,
        keys,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"values": [ISSUER]}, "aud": {"values": [CLIENT]}},
        claims_params={"nonce": "n-0S6_WzA2Mj", "client_id": CLIENT, "access_token": ACCESS_TOKEN},
    )
    claims.validate(now=int(time.time()), leeway=0)
    assert claims["sub"] == SIGN_IN.subject

    tampered = provider.id_tokens.issue(
        SIGN_IN, client_id=CLIENT, nonce="n-0S6_WzA2Mj", access_token=ACCESS_TOKEN + "x"
    )
    refused = authlib_jwt.decode(
        tampered,
        keys,
        claims_cls=CodeIDToken,
        claims_params={"nonce": "n-0S6_WzA2Mj", "client_id": CLIENT, "access_token": ACCESS_TOKEN},
    )
    with pytest.raises(Exception, match="at_hash"):
        refused.validate()


def test_pyjwt_and_joserfc_verify_it_with_the_published_jwks(provider: Provider) -> None:
    token = provider.id_tokens.issue(SIGN_IN, client_id=CLIENT, nonce="n-0S6_WzA2Mj")
    kid = jose.jwt.decode_unverified(token)[0]["kid"]
    (jwk,) = [jwk for jwk in provider.keyring.jwks()["keys"] if jwk["kid"] == kid]

    by_pyjwt = pyjwt.decode(
        token,
        pyjwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=CLIENT,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "aud", "iss"]},
    )
    assert by_pyjwt["nonce"] == "n-0S6_WzA2Mj"

    by_joserfc = joserfc.jwt.decode(token, joserfc.jwk.KeySet.import_key_set({"keys": [jwk]}))
    joserfc.jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": CLIENT}
    ).validate(by_joserfc.claims)
    assert by_joserfc.claims["sub"] == SIGN_IN.subject
