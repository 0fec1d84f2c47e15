"""The JWA registry (RFC 7518, RFC 8037, RFC 8812, RFC 9864): each algorithm bound to one key type.

An :class:`Algorithm` knows which key type (and curve) it takes, how strong that key must be, and
how to turn a key into a prepared ``sign(message) -> signature`` or
``verify(message, signature) -> bool`` callable, so per-key work happens once, not per token.
``none`` is not an algorithm here and cannot become one.

>>> from tessera.jose.algorithms import get
>>> get("ES256").kty, get("ES256").curve
('EC', 'P-256')
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .errors import AlgorithmNotAllowed

Sign = Callable[[bytes], bytes]
Verify = Callable[[bytes, bytes], bool]

MIN_RSA_BITS = 2048

_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    256: hashes.SHA256,
    384: hashes.SHA384,
    512: hashes.SHA512,
}

# Curve name (JWK "crv") → (cryptography curve class, coordinate octets, group order).
EC_CURVES: dict[str, tuple[type[ec.EllipticCurve], int, int]] = {
    "P-256": (
        ec.SECP256R1,
        32,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    "P-384": (
        ec.SECP384R1,
        48,
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77A"
            "ECEC196ACCC52973",
            16,
        ),
    ),
    "P-521": (
        ec.SECP521R1,
        66,
        int(
            "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783"
            "BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    ),
    "secp256k1": (
        ec.SECP256K1,
        32,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    ),
}


class Algorithm:
    """One JWS algorithm: its name, the key type and curve it takes, and its primitives.

    >>> get("HS256").min_secret_bytes
    32
    """

    __slots__ = ("curve", "kty", "make_signer", "make_verifier", "min_secret_bytes", "name")

    def __init__(
        self,
        name: str,
        kty: str,
        curve: str | None,
        make_signer: Callable[[Any], Sign],
        make_verifier: Callable[[Any], Verify],
        min_secret_bytes: int = 0,
    ) -> None:
        self.name = name
        self.kty = kty
        self.curve = curve
        self.make_signer = make_signer
        self.make_verifier = make_verifier
        self.min_secret_bytes = min_secret_bytes

    def __repr__(self) -> str:
        return f"Algorithm({self.name!r})"

    def accepts(self, kty: str, curve: str | None) -> bool:
        """Whether a key of this type (and curve) may be used with this algorithm.

        >>> get("EdDSA").accepts("OKP", "Ed448"), get("Ed25519").accepts("OKP", "Ed448")
        (True, False)
        """
        return self.kty == kty and (self.curve is None or self.curve == curve)


def _hmac(bits: int) -> tuple[Callable[[Any], Sign], Callable[[Any], Verify]]:
    algorithm = _HASHES[bits]()

    def make_signer(secret: bytes) -> Sign:
        prepared = crypto_hmac.HMAC(secret, algorithm)

        def sign(message: bytes) -> bytes:
            context = prepared.copy()
            context.update(message)
            return context.finalize()

        return sign

    def make_verifier(secret: bytes) -> Verify:
        sign = make_signer(secret)
        compare = hmac.compare_digest

        def verify(message: bytes, signature: bytes) -> bool:
            return compare(sign(message), signature)

        return verify

    return make_signer, make_verifier


def _rsa(bits: int, pss: bool) -> tuple[Callable[[Any], Sign], Callable[[Any], Verify]]:
    algorithm = _HASHES[bits]()
    scheme: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        if pss
        else padding.PKCS1v15()
    )

    def make_signer(private: rsa.RSAPrivateKey) -> Sign:
        def sign(message: bytes) -> bytes:
            return private.sign(message, scheme, algorithm)

        return sign

    def make_verifier(public: rsa.RSAPublicKey) -> Verify:
        size = (public.key_size + 7) // 8
        check = public.verify

        def verify(message: bytes, signature: bytes) -> bool:
            if len(signature) != size:
                return False
            try:
                check(signature, message, scheme, algorithm)
            except InvalidSignature:
                return False
            return True

        return verify

    return make_signer, make_verifier


def _ecdsa(bits: int, curve: str) -> tuple[Callable[[Any], Sign], Callable[[Any], Verify]]:
    scheme = ec.ECDSA(_HASHES[bits]())
    _, size, order = EC_CURVES[curve]

    def make_signer(private: ec.EllipticCurvePrivateKey) -> Sign:
        def sign(message: bytes) -> bytes:
            r, s = decode_dss_signature(private.sign(message, scheme))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return sign

    def make_verifier(public: ec.EllipticCurvePublicKey) -> Verify:
        check = public.verify

        def verify(message: bytes, signature: bytes) -> bool:
            # JWS signatures are fixed-length R || S (RFC 7518 §3.4); r and s must lie in [1, n-1]
            # (a zero signature verifying anything was CVE-2022-21449).
            if len(signature) != 2 * size:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            if not (0 < r < order and 0 < s < order):
                return False
            try:
                check(encode_dss_signature(r, s), message, scheme)
            except InvalidSignature:
                return False
            return True

        return verify

    return make_signer, make_verifier


def _eddsa() -> tuple[Callable[[Any], Sign], Callable[[Any], Verify]]:
    def make_signer(private: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) -> Sign:
        return private.sign

    def make_verifier(public: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) -> Verify:
        size = 64 if isinstance(public, ed25519.Ed25519PublicKey) else 114
        check = public.verify

        def verify(message: bytes, signature: bytes) -> bool:
            if len(signature) != size:
                return False
            try:
                check(signature, message)
            except InvalidSignature:
                return False
            return True

        return verify

    return make_signer, make_verifier


def _build() -> dict[str, Algorithm]:
    registry: dict[str, Algorithm] = {}

    def add(name: str, kty: str, curve: str | None, pair: Any, min_secret: int = 0) -> None:
        registry[name] = Algorithm(name, kty, curve, pair[0], pair[1], min_secret)

    for bits in (256, 384, 512):
        add(f"HS{bits}", "oct", None, _hmac(bits), bits // 8)
        add(f"RS{bits}", "RSA", None, _rsa(bits, pss=False))
        add(f"PS{bits}", "RSA", None, _rsa(bits, pss=True))
    add("ES256", "EC", "P-256", _ecdsa(256, "P-256"))
    add("ES384", "EC", "P-384", _ecdsa(384, "P-384"))
    add("ES512", "EC", "P-521", _ecdsa(512, "P-521"))
    add("ES256K", "EC", "secp256k1", _ecdsa(256, "secp256k1"))
    add("EdDSA", "OKP", None, _eddsa())
    add("Ed25519", "OKP", "Ed25519", _eddsa())
    add("Ed448", "OKP", "Ed448", _eddsa())
    return registry


ALGORITHMS: dict[str, Algorithm] = _build()


def get(name: object) -> Algorithm:
    """The registered algorithm called ``name``; anything else (``none`` included) is refused.

    >>> get("none")
    Traceback (most recent call last):
    ...
    tessera.jose.errors.AlgorithmNotAllowed: algorithm not supported
    """
    algorithm = ALGORITHMS.get(name) if type(name) is str else None
    if algorithm is None:
        raise AlgorithmNotAllowed("algorithm not supported")
    return algorithm
