"""The peer libraries (PyJWT, joserfc, jwcrypto) behind one small interface, and what each lacks.

Every interop test is written once against :class:`Peer`; each adapter speaks its library the way
that library's own documentation does (PyJWT takes PEM and raw secrets, joserfc and jwcrypto take
JWKs). A *native* key is whatever the peer itself holds: a ``cryptography`` key or ``bytes`` for
PyJWT, a ``joserfc.jwk`` key, a ``jwcrypto.jwk.JWK``.

What a peer cannot do is written down in :data:`UNSUPPORTED` with the reason found in its source,
and a test proves each entry (the peer really refuses), so nothing is skipped silently.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import joserfc.errors
import joserfc.jwk
import joserfc.jwt
import jwcrypto.jwk
import jwcrypto.jws
import jwcrypto.jwt
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from tessera import jose

ISSUER = "https://id.tessera.example"
AUDIENCE = "https://orders.api.example"
# Claims every peer must check on the way in, and the ones that must be present.
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "nbf", "jti")
# The members of a JWK that carry key material (RFC 7517/7518/8037), as opposed to metadata.
KEY_MEMBERS = frozenset({"kty", "crv", "x", "y", "n", "e", "d", "p", "q", "dp", "dq", "qi", "k"})
PUBLIC_KEY_MEMBERS = frozenset({"kty", "crv", "x", "y", "n", "e"})


def realistic_claims() -> dict[str, Any]:
    """An access token's claims as an identity provider would issue them, fresh for each test."""
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "user-5f1c2a",
        "aud": [AUDIENCE, "https://billing.api.example"],
        "exp": now + 600,
        "iat": now,
        "nbf": now,
        "jti": uuid.uuid4().hex,
        "scope": "orders:read orders:write",
        "roles": ["admin", "auditor"],
        "name": "Zoë Ångström",
        "tenant": {"id": "t-42", "plan": "pro"},
    }


def key_material(jwk: dict[str, Any], members: frozenset[str] = KEY_MEMBERS) -> dict[str, Any]:
    """The members of a JWK that say which key it is, without kid/alg/use metadata."""
    return {name: value for name, value in jwk.items() if name in members}


# ------------------------------------------------------------------------------------ cases


@dataclass(frozen=True)
class Case:
    """One algorithm of Tessera's registry with the key it takes (EdDSA appears once per curve)."""

    id: str
    alg: str
    kty: str
    crv: str | None = None

    @property
    def symmetric(self) -> bool:
        return self.kty == "oct"

    @property
    def secret_bytes(self) -> int:
        """HMAC secret length: the hash output (RFC 7518 §3.2)."""
        return int(self.alg[2:]) // 8


CASES: tuple[Case, ...] = (
    Case("HS256", "HS256", "oct"),
    Case("HS384", "HS384", "oct"),
    Case("HS512", "HS512", "oct"),
    Case("RS256", "RS256", "RSA"),
    Case("RS384", "RS384", "RSA"),
    Case("RS512", "RS512", "RSA"),
    Case("PS256", "PS256", "RSA"),
    Case("PS384", "PS384", "RSA"),
    Case("PS512", "PS512", "RSA"),
    Case("ES256", "ES256", "EC", "P-256"),
    Case("ES384", "ES384", "EC", "P-384"),
    Case("ES512", "ES512", "EC", "P-521"),
    Case("ES256K", "ES256K", "EC", "secp256k1"),
    Case("EdDSA-Ed25519", "EdDSA", "OKP", "Ed25519"),
    Case("EdDSA-Ed448", "EdDSA", "OKP", "Ed448"),
    Case("Ed25519", "Ed25519", "OKP", "Ed25519"),
    Case("Ed448", "Ed448", "OKP", "Ed448"),
)
ASYMMETRIC_CASES = tuple(case for case in CASES if not case.symmetric)
CASES_BY_ID = {case.id: case for case in CASES}


def tessera_key(case: Case) -> jose.Key:
    """A fresh Tessera private key (or secret) bound to the case's algorithm."""
    if case.alg == "EdDSA" and case.crv == "Ed448":
        # Key.generate("EdDSA") picks Ed25519; EdDSA over Ed448 is bound by hand.
        return jose.Key(ed448.Ed448PrivateKey.generate(), alg="EdDSA")
    return jose.Key.generate(case.alg)


def cryptography_key(case: Case) -> Any:
    """A fresh ``cryptography`` private key (or secret bytes) of the case's key type."""
    if case.kty == "oct":
        return secrets.token_bytes(case.secret_bytes)
    if case.kty == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if case.kty == "EC":
        curves = {
            "P-256": ec.SECP256R1,
            "P-384": ec.SECP384R1,
            "P-521": ec.SECP521R1,
            "secp256k1": ec.SECP256K1,
        }
        return ec.generate_private_key(curves[str(case.crv)]())
    if case.crv == "Ed448":
        return ed448.Ed448PrivateKey.generate()
    return ed25519.Ed25519PrivateKey.generate()


def tessera_decode(token: str, key: Any, case: Case) -> dict[str, Any]:
    """Verify as a Tessera guard would: one algorithm, exact issuer and audience."""
    return jose.jwt.decode(
        token,
        key,
        algorithms=[case.alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        require=REQUIRED_CLAIMS,
    )


def public_pem(private: Any) -> bytes:
    """SubjectPublicKeyInfo PEM of a ``cryptography`` private key."""
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# ------------------------------------------------------------------------------------ keyring


def shape(case: Case) -> str:
    """The key a case needs, as a kid: RS256 and PS512 share "RSA", EdDSA and Ed25519 "Ed25519"."""
    if case.kty == "oct":
        return f"oct-{case.secret_bytes * 8}"
    return case.crv or case.kty


class Keyring:
    """Tessera keys (one per algorithm, bound to it) and peer keys (one per key shape)."""

    def __init__(self) -> None:
        self._tessera: dict[str, jose.Key] = {}
        self._peer: dict[tuple[str, str], Any] = {}

    def tessera(self, case: Case) -> jose.Key:
        if case.id not in self._tessera:
            self._tessera[case.id] = tessera_key(case)
        return self._tessera[case.id]

    def peer(self, peer: Peer, case: Case) -> Any:
        slot = (peer.name, shape(case))
        if slot not in self._peer:
            self._peer[slot] = peer.generate(case)
        return self._peer[slot]

    def peer_public_keys(self, peer: Peer) -> dict[str, Any]:
        """Every asymmetric key the peer can use, by kid (its shape)."""
        return {
            shape(case): self.peer(peer, case) for case in ASYMMETRIC_CASES if supports(peer, case)
        }


# ------------------------------------------------------------------------------------ peers


class Peer:
    """One peer library. Subclasses translate each operation into that library's own calls."""

    name = ""
    # What the peer raises when a signature does not verify.
    bad_signature_error: type[Exception] = Exception
    # Whether (and how) the peer refuses a PEM public key as an HMAC secret (key confusion).
    refuses_pem_as_hmac_secret = False
    pem_as_hmac_secret_error: type[Exception] | None = None
    # What the peer raises for an algorithm it does not implement (see UNSUPPORTED).
    unknown_algorithm_errors: tuple[type[Exception], ...] = ()

    def __repr__(self) -> str:
        return self.name

    def generate(self, case: Case) -> Any:
        """A private key (or secret) the peer makes itself for this case's key type."""
        raise NotImplementedError

    def verification_key_from_tessera(self, key: jose.Key) -> Any:
        """Tessera's verification key handed over the way this peer prefers."""
        raise NotImplementedError

    def verification_material(self, native: Any) -> bytes | dict[str, Any]:
        """What the peer publishes for Tessera to verify with: SPKI PEM, or the oct JWK."""
        raise NotImplementedError

    def import_jwk(self, jwk: dict[str, Any]) -> Any:
        raise NotImplementedError

    def export_jwk(self, native: Any, *, private: bool) -> dict[str, Any]:
        raise NotImplementedError

    def read_jwks(self, jwks: dict[str, Any]) -> Any:
        raise NotImplementedError

    def export_jwks(self, natives: dict[str, Any]) -> dict[str, Any]:
        """A public JWK Set of ``natives`` (kid → native key), each key carrying its kid."""
        raise NotImplementedError

    def sign(self, claims: dict[str, Any], native: Any, alg: str, kid: str | None = None) -> str:
        raise NotImplementedError

    def decode(self, token: str, native: Any, alg: str) -> dict[str, Any]:
        """Verify ``token`` (signature, iss, aud, exp/nbf/iat, required claims); return claims."""
        raise NotImplementedError

    def thumbprint(self, native: Any) -> str:
        raise NotImplementedError

    def sign_none(self, claims: dict[str, Any]) -> str:
        """An unsecured JWT (``alg: none``) made by the peer's own API."""
        raise NotImplementedError

    def sign_hs256(self, claims: dict[str, Any], secret: bytes) -> str:
        """HS256 with ``secret`` taken as raw HMAC key bytes, as the peer's API allows."""
        raise NotImplementedError


class PyJWT(Peer):
    """PyJWT: ``jwt.encode``/``jwt.decode`` with ``cryptography`` keys, PEM, or raw secrets."""

    name = "pyjwt"
    bad_signature_error = pyjwt.InvalidSignatureError
    # HMACAlgorithm.prepare_key raises InvalidKeyError for PEM, SSH and DER keys.
    refuses_pem_as_hmac_secret = True
    pem_as_hmac_secret_error = pyjwt.InvalidKeyError
    # jwt.encode: NotImplementedError("Algorithm not supported"); jwt.decode: InvalidAlgorithmError.
    unknown_algorithm_errors = (NotImplementedError, pyjwt.InvalidAlgorithmError)

    @staticmethod
    def _algorithm(native: Any) -> Any:
        """The PyJWT Algorithm whose to_jwk understands this key type."""
        algorithms = get_default_algorithms()
        if isinstance(native, bytes):
            return algorithms["HS256"]
        if isinstance(native, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            return algorithms["RS256"]
        if isinstance(native, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            return algorithms["ES256"]
        return algorithms["EdDSA"]

    def generate(self, case: Case) -> Any:
        # PyJWT does not generate keys; its documentation uses `cryptography` for that.
        return cryptography_key(case)

    def verification_key_from_tessera(self, key: jose.Key) -> Any:
        if key.kty == "oct":
            return jose.b64.decode(key.to_jwk(private=True)["k"])
        return key.to_pem()

    def verification_material(self, native: Any) -> bytes | dict[str, Any]:
        if isinstance(native, bytes):
            return self.export_jwk(native, private=True)
        return public_pem(native)

    def import_jwk(self, jwk: dict[str, Any]) -> Any:
        return pyjwt.PyJWK(jwk).key

    def export_jwk(self, native: Any, *, private: bool) -> dict[str, Any]:
        exported = native if private else self._public(native)
        return dict(self._algorithm(native).to_jwk(exported, as_dict=True))

    @staticmethod
    def _public(native: Any) -> Any:
        """The public half of a private key; public keys and secrets as they are."""
        return native.public_key() if hasattr(native, "public_key") else native

    def read_jwks(self, jwks: dict[str, Any]) -> Any:
        return pyjwt.PyJWKSet.from_dict(jwks)

    def export_jwks(self, natives: dict[str, Any]) -> dict[str, Any]:
        # PyJWT has no JWK Set writer; a set is its to_jwk output with a kid added, in "keys".
        return {
            "keys": [
                {**self.export_jwk(native, private=False), "kid": kid}
                for kid, native in natives.items()
            ]
        }

    def sign(self, claims: dict[str, Any], native: Any, alg: str, kid: str | None = None) -> str:
        headers = {"kid": kid} if kid is not None else None
        return pyjwt.encode(claims, native, algorithm=alg, headers=headers)

    def decode(self, token: str, native: Any, alg: str) -> dict[str, Any]:
        if isinstance(native, pyjwt.PyJWKSet):
            native = native[pyjwt.get_unverified_header(token)["kid"]]
        elif not isinstance(native, bytes | str):
            native = self._public(native)  # PyJWT verifies with the public key object only
        return pyjwt.decode(
            token,
            native,
            algorithms=[alg],
            issuer=ISSUER,
            audience=AUDIENCE,
            options={"require": list(REQUIRED_CLAIMS)},
        )

    def thumbprint(self, native: Any) -> str:
        raise NotImplementedError("PyJWT has no RFC 7638 thumbprint API")

    def sign_none(self, claims: dict[str, Any]) -> str:
        return pyjwt.encode(claims, None, algorithm="none")

    def sign_hs256(self, claims: dict[str, Any], secret: bytes) -> str:
        return pyjwt.encode(claims, secret, algorithm="HS256")


class Joserfc(Peer):
    """joserfc: ``jwt.encode/decode`` with ``jwk`` keys and an explicit algorithm allow-list.

    joserfc only uses its "recommended" algorithms (HS256, RS256, ES256) unless ``algorithms``
    names others, so every call passes the algorithm under test.
    """

    name = "joserfc"
    bad_signature_error = joserfc.errors.BadSignatureError
    # OctKey.import_key raises ValueError("Asymmetric public keys must not be used as oct keys").
    refuses_pem_as_hmac_secret = True
    pem_as_hmac_secret_error = ValueError

    def generate(self, case: Case) -> Any:
        if case.kty == "oct":
            return joserfc.jwk.OctKey.generate_key(case.secret_bytes * 8)
        if case.kty == "RSA":
            return joserfc.jwk.RSAKey.generate_key(2048)
        if case.kty == "EC":
            return joserfc.jwk.ECKey.generate_key(case.crv)
        return joserfc.jwk.OKPKey.generate_key(case.crv)

    def verification_key_from_tessera(self, key: jose.Key) -> Any:
        return self.import_jwk(key.to_jwk(private=key.kty == "oct"))

    def verification_material(self, native: Any) -> bytes | dict[str, Any]:
        if isinstance(native, joserfc.jwk.OctKey):
            return self.export_jwk(native, private=True)
        return native.as_pem(private=False)

    def import_jwk(self, jwk: dict[str, Any]) -> Any:
        return joserfc.jwk.import_key(jwk)

    def export_jwk(self, native: Any, *, private: bool) -> dict[str, Any]:
        return dict(native.as_dict(private=private))

    def read_jwks(self, jwks: dict[str, Any]) -> Any:
        return joserfc.jwk.KeySet.import_key_set(jwks)

    def export_jwks(self, natives: dict[str, Any]) -> dict[str, Any]:
        keys = []
        for kid, native in natives.items():
            keys.append(joserfc.jwk.import_key({**native.as_dict(private=False), "kid": kid}))
        return dict(joserfc.jwk.KeySet(keys).as_dict(private=False))

    def sign(self, claims: dict[str, Any], native: Any, alg: str, kid: str | None = None) -> str:
        header: dict[str, Any] = {"alg": alg}
        if kid is not None:
            header["kid"] = kid
        with _eddsa_deprecation_noted():
            return joserfc.jwt.encode(header, claims, native, algorithms=[alg])

    def decode(self, token: str, native: Any, alg: str) -> dict[str, Any]:
        with _eddsa_deprecation_noted():
            decoded = joserfc.jwt.decode(token, native, algorithms=[alg])
        essential: dict[str, Any] = {name: {"essential": True} for name in REQUIRED_CLAIMS}
        essential["iss"]["value"] = ISSUER
        essential["aud"]["value"] = AUDIENCE
        joserfc.jwt.JWTClaimsRegistry(**essential).validate(decoded.claims)
        return dict(decoded.claims)

    def thumbprint(self, native: Any) -> str:
        return str(native.thumbprint())

    def sign_none(self, claims: dict[str, Any]) -> str:
        # joserfc warns (SecurityWarning) that "none" is deprecated, then signs when asked by name.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", joserfc.errors.SecurityWarning)
            return joserfc.jwt.encode({"alg": "none"}, claims, None, algorithms=["none"])

    def sign_hs256(self, claims: dict[str, Any], secret: bytes) -> str:
        key = joserfc.jwk.OctKey.import_key(secret)
        return joserfc.jwt.encode({"alg": "HS256"}, claims, key, algorithms=["HS256"])


@contextmanager
def _eddsa_deprecation_noted() -> Iterator[None]:
    """joserfc warns at each use of "EdDSA" that RFC 9864 deprecates it; these tests mean to."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "EdDSA is deprecated via RFC 9864", joserfc.errors.SecurityWarning
        )
        yield


class Jwcrypto(Peer):
    """jwcrypto: ``jwk.JWK`` keys, ``jwt.JWT`` objects with ``check_claims``."""

    name = "jwcrypto"
    bad_signature_error = jwcrypto.jws.InvalidJWSSignature
    # An oct JWK takes any bytes as "k"; jwcrypto does not look at what the secret is.
    refuses_pem_as_hmac_secret = False

    def generate(self, case: Case) -> Any:
        if case.kty == "oct":
            return jwcrypto.jwk.JWK.generate(kty="oct", size=case.secret_bytes * 8)
        if case.kty == "RSA":
            return jwcrypto.jwk.JWK.generate(kty="RSA", size=2048)
        return jwcrypto.jwk.JWK.generate(kty=case.kty, crv=case.crv)

    def verification_key_from_tessera(self, key: jose.Key) -> Any:
        return self.import_jwk(key.to_jwk(private=key.kty == "oct"))

    def verification_material(self, native: Any) -> bytes | dict[str, Any]:
        if native.get("kty") == "oct":
            return self.export_jwk(native, private=True)
        return bytes(native.export_to_pem(private_key=False, password=None))

    def import_jwk(self, jwk: dict[str, Any]) -> Any:
        return jwcrypto.jwk.JWK(**jwk)

    def export_jwk(self, native: Any, *, private: bool) -> dict[str, Any]:
        if private:
            return dict(native.export(private_key=True, as_dict=True))
        return dict(native.export_public(as_dict=True))

    def read_jwks(self, jwks: dict[str, Any]) -> Any:
        return jwcrypto.jwk.JWKSet.from_json(json.dumps(jwks))

    def export_jwks(self, natives: dict[str, Any]) -> dict[str, Any]:
        keyset = jwcrypto.jwk.JWKSet()
        for kid, native in natives.items():
            keyset.add(jwcrypto.jwk.JWK(**{**native.export_public(as_dict=True), "kid": kid}))
        return dict(keyset.export(private_keys=False, as_dict=True))

    def sign(self, claims: dict[str, Any], native: Any, alg: str, kid: str | None = None) -> str:
        header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
        token = jwcrypto.jwt.JWT(header=header, claims=claims)
        token.make_signed_token(native)
        return str(token.serialize())

    def decode(self, token: str, native: Any, alg: str) -> dict[str, Any]:
        check: dict[str, Any] = dict.fromkeys(REQUIRED_CLAIMS)  # None: must be present
        check["iss"] = ISSUER
        check["aud"] = AUDIENCE
        verified = jwcrypto.jwt.JWT(jwt=token, key=native, algs=[alg], check_claims=check)
        return dict(json.loads(verified.claims))

    def thumbprint(self, native: Any) -> str:
        return str(native.thumbprint())

    def sign_none(self, claims: dict[str, Any]) -> str:
        # jwcrypto's "none" (jwa._RawNone) signs with an empty oct key and must be allowed by name.
        token = jwcrypto.jwt.JWT(header={"alg": "none"}, claims=claims, algs=["none"])
        token.make_signed_token(jwcrypto.jwk.JWK(kty="oct", k=""))
        return str(token.serialize())

    def sign_hs256(self, claims: dict[str, Any], secret: bytes) -> str:
        key = jwcrypto.jwk.JWK(kty="oct", k=jose.b64.encode_str(secret))
        token = jwcrypto.jwt.JWT(header={"alg": "HS256"}, claims=claims)
        token.make_signed_token(key)
        return str(token.serialize())


PEERS: tuple[Peer, ...] = (PyJWT(), Joserfc(), Jwcrypto())
PEERS_BY_NAME = {peer.name: peer for peer in PEERS}

# (peer, case id) → why the peer cannot take part. Each entry is proven by
# test_peer_really_lacks_listed_algorithm; everything not listed here is tested.
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("pyjwt", "Ed25519"): (
        "PyJWT 2.15 registers only 'EdDSA' for OKP keys: the RFC 9864 name 'Ed25519' is absent "
        "from jwt.algorithms.get_default_algorithms(), so jwt.encode raises NotImplementedError "
        "and jwt.decode refuses the alg"
    ),
    ("pyjwt", "Ed448"): (
        "PyJWT 2.15 registers only 'EdDSA' for OKP keys: the RFC 9864 name 'Ed448' is absent "
        "from jwt.algorithms.get_default_algorithms(), so jwt.encode raises NotImplementedError "
        "and jwt.decode refuses the alg"
    ),
}
# Peers with an RFC 7638 thumbprint API. PyJWT has none: PyJWK exposes key_id, key_type and
# public_key_use only (jwt/api_jwk.py), so there is nothing of PyJWT's to compare against.
THUMBPRINT_PEERS: tuple[Peer, ...] = tuple(peer for peer in PEERS if peer.name != "pyjwt")
NO_THUMBPRINT_API = {"pyjwt": "PyJWT has no RFC 7638 thumbprint API (PyJWK: key_id only)"}


def supports(peer: Peer, case: Case) -> bool:
    return (peer.name, case.id) not in UNSUPPORTED


def matrix(cases: tuple[Case, ...] = CASES, peers: tuple[Peer, ...] = PEERS) -> list[Any]:
    """``pytest.param(peer, case, id="peer-case")`` for every supported pair."""
    return [
        pytest.param(peer, case, id=f"{peer.name}-{case.id}")
        for peer in peers
        for case in cases
        if supports(peer, case)
    ]
