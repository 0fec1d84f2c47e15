"""Keys cross over: JWKs and JWK Sets both ways, and RFC 7638 thumbprints agree.

An imported key is never taken on its members alone: each test signs on one side and verifies on
the other with it. Symmetric (oct) keys have no public JWK, so the public-JWK and JWK Set tests
run over the asymmetric algorithms only; the private-JWK tests run over all of them.

Not supported by a peer (see ``peers.UNSUPPORTED`` and ``peers.NO_THUMBPRINT_API``):

* PyJWT × Ed25519, PyJWT × Ed448 — PyJWT 2.15 knows only ``EdDSA`` for OKP keys (RFC 9864 names
  absent from ``get_default_algorithms()``); its PyJWKSet skips such keys in a JWK Set.
* PyJWT × thumbprints — PyJWT has no RFC 7638 thumbprint API (``PyJWK`` offers ``key_id`` only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tessera import jose

from .peers import (
    ASYMMETRIC_CASES,
    NO_THUMBPRINT_API,
    PEERS,
    PUBLIC_KEY_MEMBERS,
    THUMBPRINT_PEERS,
    Case,
    Keyring,
    Peer,
    key_material,
    matrix,
    shape,
    tessera_decode,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc7638_thumbprints.json").read_text())


# --------------------------------------------------------------------------- Tessera JWK → peer


@pytest.mark.parametrize(("peer", "case"), matrix(ASYMMETRIC_CASES))
def test_tessera_public_jwk_imports_into_peer(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    key = keyring.tessera(case)
    jwk = key.to_jwk()
    native = peer.import_jwk(jwk)
    assert key_material(peer.export_jwk(native, private=False)) == key_material(jwk)
    # Tessera signs, the peer verifies with the key it imported.
    assert peer.decode(jose.jwt.encode(claims, key), native, case.alg) == claims


@pytest.mark.parametrize(("peer", "case"), matrix())
def test_tessera_private_jwk_imports_into_peer(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    key = keyring.tessera(case)
    jwk = key.to_jwk(private=True)
    native = peer.import_jwk(jwk)
    assert key_material(peer.export_jwk(native, private=True)) == key_material(jwk)
    # The peer signs with the imported private key, Tessera verifies with its own key.
    token = peer.sign(claims, native, case.alg)
    verification_key = key if case.symmetric else key.public()
    assert tessera_decode(token, verification_key, case) == claims


# --------------------------------------------------------------------------- peer JWK → Tessera


@pytest.mark.parametrize(("peer", "case"), matrix(ASYMMETRIC_CASES))
def test_peer_public_jwk_imports_into_tessera(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    native = keyring.peer(peer, case)
    jwk = peer.export_jwk(native, private=False)
    key = jose.Key.from_jwk(jwk)
    assert not key.is_private
    assert key_material(key.to_jwk()) == key_material(jwk)
    # The peer signs, Tessera verifies with the key it imported.
    assert tessera_decode(peer.sign(claims, native, case.alg), key, case) == claims


@pytest.mark.parametrize(("peer", "case"), matrix())
def test_peer_private_jwk_imports_into_tessera(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    native = keyring.peer(peer, case)
    jwk = peer.export_jwk(native, private=True)
    key = jose.Key.from_jwk(jwk)
    assert key.is_private
    assert key_material(key.to_jwk(private=True)) == key_material(jwk)
    # Tessera signs with the imported private key, the peer verifies with its own key.
    token = jose.jwt.encode(claims, key, alg=case.alg)
    assert peer.decode(token, native, case.alg) == claims


# --------------------------------------------------------------------------- JWK Sets


@pytest.fixture(scope="module")
def tessera_jwks(keyring: Keyring) -> dict[str, Any]:
    """The JWKS a Tessera identity provider publishes: one key per asymmetric algorithm."""
    return jose.KeySet([keyring.tessera(case) for case in ASYMMETRIC_CASES]).to_jwks()


@pytest.mark.parametrize(("peer", "case"), matrix(ASYMMETRIC_CASES))
def test_tessera_jwks_is_read_by_peer(
    peer: Peer,
    case: Case,
    keyring: Keyring,
    tessera_jwks: dict[str, Any],
    claims: dict[str, Any],
) -> None:
    keys = peer.read_jwks(tessera_jwks)
    token = jose.jwt.encode(claims, keyring.tessera(case))
    # The peer picks the key by the token's kid (Tessera's default kid: the thumbprint).
    assert jose.jwt.decode_unverified(token)[0]["kid"] == keyring.tessera(case).thumbprint()
    assert peer.decode(token, keys, case.alg) == claims


@pytest.mark.parametrize(("peer", "case"), matrix(ASYMMETRIC_CASES))
def test_peer_jwks_is_read_by_tessera(
    peer: Peer, case: Case, keyring: Keyring, claims: dict[str, Any]
) -> None:
    published = keyring.peer_public_keys(peer)
    keys = jose.KeySet.from_jwks(peer.export_jwks(published))
    assert sorted(key.kid for key in keys) == sorted(published)
    token = peer.sign(claims, keyring.peer(peer, case), case.alg, kid=shape(case))
    assert tessera_decode(token, keys, case) == claims


# --------------------------------------------------------------------------- thumbprints


def test_thumbprint_peers_are_all_but_the_listed() -> None:
    assert {peer.name for peer in THUMBPRINT_PEERS} == {peer.name for peer in PEERS} - set(
        NO_THUMBPRINT_API
    )


@pytest.mark.parametrize(("peer", "case"), matrix(peers=THUMBPRINT_PEERS))
def test_tessera_thumbprint_equals_peer_thumbprint(
    peer: Peer, case: Case, keyring: Keyring
) -> None:
    key = keyring.tessera(case)
    native = peer.import_jwk(key.to_jwk(private=case.symmetric))
    assert key.thumbprint() == peer.thumbprint(native)


@pytest.mark.parametrize(("peer", "case"), matrix(ASYMMETRIC_CASES, THUMBPRINT_PEERS))
def test_tessera_default_kid_is_the_peer_thumbprint(
    peer: Peer, case: Case, keyring: Keyring
) -> None:
    key = keyring.tessera(case)
    published = key.to_jwk()
    assert published["kid"] == peer.thumbprint(peer.import_jwk(published))


@pytest.mark.parametrize(("peer", "case"), matrix(peers=THUMBPRINT_PEERS))
def test_peer_key_thumbprint_equals_tessera_thumbprint(
    peer: Peer, case: Case, keyring: Keyring
) -> None:
    native = keyring.peer(peer, case)
    key = jose.Key.from_jwk(peer.export_jwk(native, private=case.symmetric))
    assert key.thumbprint() == peer.thumbprint(native)


THUMBPRINTERS = {
    "tessera": lambda jwk: jose.Key.from_jwk(jwk).thumbprint(),
    **{
        peer.name: lambda jwk, peer=peer: peer.thumbprint(peer.import_jwk(jwk))
        for peer in THUMBPRINT_PEERS
    },
}


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector["name"])
@pytest.mark.parametrize("implementation", THUMBPRINTERS)
def test_rfc7638_example_thumbprint(implementation: str, vector: dict[str, Any]) -> None:
    assert THUMBPRINTERS[implementation](vector["jwk"]) == vector["sha256"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector["name"])
def test_rfc7638_example_keeps_its_published_kid(vector: dict[str, Any]) -> None:
    key = jose.Key.from_jwk(vector["jwk"])
    assert key.kid == vector["jwk"]["kid"]
    assert key_material(key.to_jwk(), PUBLIC_KEY_MEMBERS) == key_material(
        vector["jwk"], PUBLIC_KEY_MEMBERS
    )
