"""Tessera and the peer libraries read each other's JWTs, both ways, for every algorithm.

Peers: PyJWT, joserfc and jwcrypto (adapters in ``peers.py``). Every supported pair of
(peer, algorithm) runs; the pairs a peer does not support are listed in ``peers.UNSUPPORTED``
with the reason, and ``test_peer_really_lacks_listed_algorithm`` proves each entry:

* PyJWT × Ed25519, PyJWT × Ed448 — PyJWT 2.15 has only ``EdDSA`` for OKP keys; the RFC 9864
  algorithm names are not in ``jwt.algorithms.get_default_algorithms()``. (PyJWT × EdDSA runs
  with both Ed25519 and Ed448 keys.)

The negative cross-checks at the end forge what an attacker would: an HS256 token keyed with
Tessera's own RSA public key PEM (key confusion), and ``alg: none`` tokens made by each peer.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from tessera import jose

from .peers import (
    AUDIENCE,
    CASES,
    CASES_BY_ID,
    ISSUER,
    PEERS,
    PEERS_BY_NAME,
    UNSUPPORTED,
    Case,
    Keyring,
    Peer,
    matrix,
    tessera_decode,
)


def header_of(token: str) -> dict[str, Any]:
    return jose.jwt.decode_unverified(token)[0]


def with_other_subject(token: str) -> str:
    """The token with its payload swapped for one naming another subject, signature kept."""
    header, payload, signature = token.split(".")
    claims = jose.jwt.decode_unverified(token)[1]
    forged = jose.b64.encode_str(jose.json.dumps({**claims, "sub": "someone-else"}))
    assert forged != payload
    return f"{header}.{forged}.{signature}"


# --------------------------------------------------------------------------- coverage


def test_every_tessera_algorithm_is_covered() -> None:
    assert {case.alg for case in CASES} == set(jose.algorithms.ALGORITHMS)
    eddsa_curves = {case.crv for case in CASES if case.alg == "EdDSA"}
    assert eddsa_curves == {"Ed25519", "Ed448"}


@pytest.mark.parametrize(
    ("peer", "case"),
    [
        pytest.param(PEERS_BY_NAME[name], CASES_BY_ID[case_id], id=f"{name}-{case_id}")
        for name, case_id in UNSUPPORTED
    ],
)
def test_peer_really_lacks_listed_algorithm(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    key = keyring.tessera(case)
    token = jose.jwt.encode(claims, key)
    with pytest.raises(peer.unknown_algorithm_errors):
        peer.sign(claims, peer.generate(case), case.alg)
    with pytest.raises(peer.unknown_algorithm_errors):
        peer.decode(token, peer.verification_key_from_tessera(key), case.alg)


# --------------------------------------------------------------------------- Tessera → peer


@pytest.mark.parametrize(("peer", "case"), matrix())
def test_tessera_token_verifies_in_peer(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    key = keyring.tessera(case)
    token = jose.jwt.encode(claims, key)
    assert header_of(token)["alg"] == case.alg
    assert peer.decode(token, peer.verification_key_from_tessera(key), case.alg) == claims


@pytest.mark.parametrize(("peer", "case"), matrix())
def test_tampered_tessera_token_is_refused_by_peer(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    key = keyring.tessera(case)
    token = with_other_subject(jose.jwt.encode(claims, key))
    with pytest.raises(peer.bad_signature_error):
        peer.decode(token, peer.verification_key_from_tessera(key), case.alg)


# --------------------------------------------------------------------------- peer → Tessera


@pytest.mark.parametrize(("peer", "case"), matrix())
def test_peer_token_verifies_in_tessera(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    native = keyring.peer(peer, case)
    token = peer.sign(claims, native, case.alg)
    assert header_of(token)["alg"] == case.alg
    # The peer's public key as SPKI PEM (its HMAC secret as an oct JWK), as a guard is given it.
    assert tessera_decode(token, peer.verification_material(native), case) == claims


@pytest.mark.parametrize(("peer", "case"), matrix())
def test_tampered_peer_token_is_refused_by_tessera(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    native = keyring.peer(peer, case)
    token = with_other_subject(peer.sign(claims, native, case.alg))
    with pytest.raises(jose.InvalidSignature):
        tessera_decode(token, peer.verification_material(native), case)


# Random 256-bit HMAC secrets that merely look like the start of key text: one secret in 256
# begins with 0x7B ("{"), one in 65536 with 0x30 0x1E (the head of a 32-byte DER SEQUENCE).
# Every peer signs with them; a guard handed the same raw secret bytes (the PyJWT-shaped call)
# must accept the token.
UNLUCKY_SECRETS = {
    "leading-brace": bytes.fromhex(
        "7b9c2e51f0a7d84b3e6f12c09a5de7b4813a6c2f90e5d17b48c3a9f6021e8d75"
    ),
    "der-shaped": bytes.fromhex("301e4f8a2c71d95be0367a14c8f2d09b5e63a1f7c42e8d0b96f3a15c7e2d4b80"),
}


@pytest.mark.parametrize("secret", UNLUCKY_SECRETS)
@pytest.mark.parametrize("peer", PEERS, ids=repr)
def test_peer_random_hmac_secret_verifies_in_tessera(
    peer: Peer, secret: str, claims: dict[str, Any]
) -> None:
    raw = UNLUCKY_SECRETS[secret]
    assert len(raw) == 32
    token = peer.sign_hs256(claims, raw)
    decoded = jose.jwt.decode(token, raw, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE)
    assert decoded == claims


# --------------------------------------------------------------------------- key confusion


def hand_made_hs256(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT made with nothing but ``hmac``, as an attacker does when a library refuses."""
    header = jose.b64.encode_str(jose.json.dumps({"alg": "HS256", "typ": "JWT"}))
    payload = jose.b64.encode_str(jose.json.dumps(claims))
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{jose.b64.encode_str(mac)}"


def hmac_is_valid(token: str, secret: bytes) -> bool:
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(expected, jose.b64.decode(signature))


@pytest.mark.parametrize(
    "peer", [peer for peer in PEERS if peer.refuses_pem_as_hmac_secret], ids=repr
)
def test_peer_refuses_public_pem_as_hmac_secret(
    peer: Peer, keyring: Keyring, claims: dict[str, Any]
) -> None:
    pem = keyring.tessera(CASES_BY_ID["RS256"]).to_pem()
    assert peer.pem_as_hmac_secret_error is not None
    with pytest.raises(peer.pem_as_hmac_secret_error):
        peer.sign_hs256(claims, pem)


# How the forged token is made: by a peer that allows it, or by hand (for pyjwt and joserfc,
# which refuse a PEM as an HMAC secret — proven by test_peer_refuses_public_pem_as_hmac_secret).
FORGERS = {
    **{peer.name: peer.sign_hs256 for peer in PEERS if not peer.refuses_pem_as_hmac_secret},
    "by-hand": hand_made_hs256,
}
# Tessera's RSA public key in every form a guard can be given it, and the refusal each gets:
# with one key the algorithm does not fit it; in a key set no key fits it.
PUBLIC_KEY_FORMS: dict[str, tuple[Any, type[jose.InvalidToken]]] = {
    "pem-bytes": (lambda key: key.to_pem(), jose.AlgorithmNotAllowed),
    "pem-str": (lambda key: key.to_pem().decode("ascii"), jose.AlgorithmNotAllowed),
    "key": (lambda key: key.public(), jose.AlgorithmNotAllowed),
    "jwk": (lambda key: key.to_jwk(), jose.AlgorithmNotAllowed),
    "jwks": (lambda key: jose.KeySet([key]).to_jwks(), jose.KeyNotFound),
}


@pytest.mark.parametrize("form", PUBLIC_KEY_FORMS)
@pytest.mark.parametrize("forger", FORGERS)
def test_key_confusion_token_is_refused_by_tessera(
    forger: str, form: str, keyring: Keyring, claims: dict[str, Any]
) -> None:
    key = keyring.tessera(CASES_BY_ID["RS256"])
    pem = key.to_pem()
    token = FORGERS[forger](claims, pem)
    # The forgery is real: a verifier that took the PEM as an HMAC secret would accept it.
    assert header_of(token)["alg"] == "HS256"
    assert hmac_is_valid(token, pem)
    as_given, refusal = PUBLIC_KEY_FORMS[form]
    with pytest.raises(refusal):
        jose.jwt.decode(
            token,
            as_given(key),
            algorithms=["RS256", "HS256"],
            issuer=ISSUER,
            audience=AUDIENCE,
        )


# --------------------------------------------------------------------------- alg: none


@pytest.mark.parametrize("case_id", ["HS256", "RS256", "ES256", "EdDSA-Ed25519"])
@pytest.mark.parametrize("peer", PEERS, ids=repr)
def test_peer_none_token_is_refused_by_tessera(
    peer: Peer, case_id: str, keyring: Keyring, claims: dict[str, Any]
) -> None:
    case = CASES_BY_ID[case_id]
    key = keyring.tessera(case)
    token = peer.sign_none(claims)
    assert header_of(token)["alg"] == "none"
    assert token.endswith(".")
    verification_key = key if case.symmetric else key.public()
    with pytest.raises(jose.AlgorithmNotAllowed):
        tessera_decode(token, verification_key, case)
