"""Keys and key sets: generate, import and export (PEM, DER, OpenSSH, JWK), thumbprints.

A :class:`Key` is bound to one key type and, when its ``alg`` is set, to one algorithm. Material
is classified, never guessed: PEM, DER, OpenSSH and JWK text become typed keys, and only what is
none of those can become an HMAC secret, so a public key never turns into one.

>>> from tessera.jose import Key, KeySet
>>> key = Key.generate("ES256")
>>> key.kid == key.thumbprint()
True
>>> KeySet([key]).to_jwks()["keys"][0]["crv"]
'P-256'
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from . import b64, json
from .algorithms import ALGORITHMS, EC_CURVES, MIN_RSA_BITS, Sign, Verify
from .errors import AlgorithmNotAllowed, InvalidKey, JoseError

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
KeyMaterial = PrivateKey | PublicKey | bytes

_CURVE_NAMES: dict[str, str] = {cls().name: name for name, (cls, _, _) in EC_CURVES.items()}
_DEFAULT_ALG = {"RSA": "RS256", "OKP": "EdDSA", "oct": "HS256"}
_EC_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}
_KEY_OPS_SIGN = frozenset({"sign"})
_KEY_OPS_VERIFY = frozenset({"verify"})
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


class Key:
    """A signing or verification key, bound to one key type and at most one algorithm.

    >>> key = Key.generate("HS256")
    >>> key.kty, key.alg, key.is_private
    ('oct', 'HS256', True)
    """

    __slots__ = (
        "_encoded_headers",
        "_private",
        "_public",
        "_secret",
        "_signers",
        "_verifiers",
        "alg",
        "crv",
        "key_ops",
        "kid",
        "kty",
        "use",
    )

    def __init__(
        self,
        material: KeyMaterial,
        *,
        alg: str | None = None,
        kid: str | None = None,
        use: str | None = None,
        key_ops: Sequence[str] | None = None,
    ) -> None:
        """Wrap a ``cryptography`` key object or an HMAC secret (``bytes``).

        >>> from cryptography.hazmat.primitives.asymmetric import ec
        >>> Key(ec.generate_private_key(ec.SECP256R1())).default_alg
        'ES256'
        """
        self._private: PrivateKey | None = None
        self._public: PublicKey | None = None
        self._secret: bytes | None = None
        self._signers: dict[str, Sign] = {}
        self._verifiers: dict[str, Verify] = {}
        # Filled by jwt.encode: the base64url JWT headers this key signs with, by algorithm
        # and the caller's header parameters.
        self._encoded_headers: dict[tuple[Any, ...], bytes] = {}
        self.crv: str | None = None
        if isinstance(material, bytes | bytearray):
            self.kty = "oct"
            self._secret = bytes(material)
            if len(self._secret) < 32:
                raise InvalidKey("HMAC secret shorter than 256 bits")
        elif isinstance(material, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            self.kty = "RSA"
            if material.key_size < MIN_RSA_BITS:
                raise InvalidKey(f"RSA key shorter than {MIN_RSA_BITS} bits")
        elif isinstance(material, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            self.kty = "EC"
            self.crv = _CURVE_NAMES.get(material.curve.name)
            if self.crv is None:
                raise InvalidKey("unsupported elliptic curve")
        elif isinstance(material, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
            self.kty, self.crv = "OKP", "Ed25519"
        elif isinstance(material, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
            self.kty, self.crv = "OKP", "Ed448"
        else:
            raise InvalidKey("unsupported key type")
        if self.kty != "oct":
            if hasattr(material, "public_key"):
                self._private = cast(PrivateKey, material)
                self._public = self._private.public_key()
            else:
                self._public = cast(PublicKey, material)
        if alg is not None:
            algorithm = ALGORITHMS.get(alg) if isinstance(alg, str) else None
            if algorithm is None or not algorithm.accepts(self.kty, self.crv):
                raise InvalidKey("algorithm does not fit the key")
            if self._secret is not None and len(self._secret) < algorithm.min_secret_bytes:
                raise InvalidKey("HMAC secret shorter than the hash output")
        if use is not None and use not in ("sig", "enc"):
            raise InvalidKey("unknown key use")
        if key_ops is not None and (
            isinstance(key_ops, str) or not all(isinstance(op, str) for op in key_ops)
        ):
            raise InvalidKey("key_ops must be a list of strings")
        if kid is not None and not isinstance(kid, str):
            raise InvalidKey("kid must be a string")
        self.alg: str | None = alg
        self.use: str | None = use
        self.key_ops: frozenset[str] | None = frozenset(key_ops) if key_ops is not None else None
        # Asymmetric keys are named by their RFC 7638 thumbprint unless told otherwise; a secret's
        # hash is not published, so symmetric keys only carry a kid they were given.
        self.kid: str | None = kid if kid is not None or self.kty == "oct" else self.thumbprint()

    # ---------------------------------------------------------------- constructors

    @classmethod
    def generate(cls, alg: str, *, kid: str | None = None, rsa_bits: int = 2048) -> Key:
        """Generate a new private key (or secret) for ``alg``.

        >>> Key.generate("EdDSA").crv
        'Ed25519'
        """
        algorithm = ALGORITHMS.get(alg)
        if algorithm is None:
            raise InvalidKey("algorithm not supported")
        material: KeyMaterial
        if algorithm.kty == "oct":
            material = secrets.token_bytes(algorithm.min_secret_bytes)
        elif algorithm.kty == "RSA":
            material = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        elif algorithm.kty == "EC":
            assert algorithm.curve is not None
            material = ec.generate_private_key(EC_CURVES[algorithm.curve][0]())
        elif algorithm.curve == "Ed448":
            material = ed448.Ed448PrivateKey.generate()
        else:
            material = ed25519.Ed25519PrivateKey.generate()
        return cls(material, alg=alg, kid=kid)

    @classmethod
    def from_secret(
        cls, secret: bytes | str, *, alg: str | None = None, kid: str | None = None
    ) -> Key:
        """An HMAC key from raw secret bytes (a ``str`` is taken as UTF-8).

        >>> Key.from_secret(b"s" * 48, alg="HS384").alg
        'HS384'
        """
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if _looks_like_key(raw):
            raise InvalidKey("key material is not an HMAC secret")
        return cls(raw, alg=alg, kid=kid)

    @classmethod
    def from_pem(
        cls,
        data: bytes | str,
        *,
        password: bytes | None = None,
        alg: str | None = None,
        kid: str | None = None,
    ) -> Key:
        """Import PEM: SPKI, PKCS#8, PKCS#1, SEC1, an X.509 certificate, or OpenSSH keys.

        >>> pem = Key.generate("ES256").to_pem()
        >>> Key.from_pem(pem).is_private
        False
        """
        raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
        raw = raw.strip()
        try:
            if raw.startswith(b"-----BEGIN CERTIFICATE-----"):
                from cryptography.x509 import load_pem_x509_certificate  # rare: load lazily

                material: Any = load_pem_x509_certificate(raw).public_key()
            elif raw.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
                material = serialization.load_ssh_private_key(raw, password)
            elif raw.startswith(b"-----BEGIN") and b"PRIVATE KEY-----" in raw[:40]:
                material = serialization.load_pem_private_key(raw, password)
            elif raw.startswith(b"-----BEGIN"):
                material = serialization.load_pem_public_key(raw)
            else:
                material = serialization.load_ssh_public_key(raw)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InvalidKey("cannot read the PEM or OpenSSH key") from None
        return cls(material, alg=alg, kid=kid)

    @classmethod
    def from_der(
        cls,
        data: bytes,
        *,
        password: bytes | None = None,
        alg: str | None = None,
        kid: str | None = None,
    ) -> Key:
        """Import DER: SPKI, PKCS#8, PKCS#1 or SEC1 keys, or an X.509 certificate.

        >>> der = Key.generate("ES256").to_der()
        >>> Key.from_der(der).kty
        'EC'
        """
        from cryptography.x509 import load_der_x509_certificate  # rare: load lazily

        material: Any = None
        for loader in (
            lambda: serialization.load_der_public_key(data),
            lambda: serialization.load_der_private_key(data, password),
            lambda: load_der_x509_certificate(data).public_key(),
        ):
            try:
                material = loader()
                break
            except (ValueError, TypeError, UnsupportedAlgorithm):
                continue
        if material is None:
            raise InvalidKey("cannot read the DER key")
        return cls(material, alg=alg, kid=kid)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any] | str | bytes) -> Key:
        """Import a JWK (RFC 7517), given as a mapping or as JSON text.

        >>> Key.from_jwk({"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}).kty
        'oct'
        """
        if isinstance(jwk, str | bytes):
            try:
                jwk = json.loads_object(jwk.encode() if isinstance(jwk, str) else jwk)
            except JoseError:
                raise InvalidKey("JWK is not a JSON object") from None
        if not isinstance(jwk, Mapping):
            raise InvalidKey("JWK is not an object")
        try:
            material = _material_from_jwk(jwk)
        except JoseError:
            raise InvalidKey("invalid JWK") from None
        except (ValueError, TypeError, KeyError, UnsupportedAlgorithm):
            raise InvalidKey("invalid JWK") from None
        return cls(
            material,
            alg=jwk.get("alg"),
            kid=jwk.get("kid"),
            use=jwk.get("use"),
            key_ops=jwk.get("key_ops"),
        )

    @classmethod
    def from_material(cls, material: bytes | str | Mapping[str, Any]) -> Key:
        """Classify raw key material: PEM, DER, OpenSSH or JWK become typed keys, the rest a secret.

        >>> Key.from_material(Key.generate("EdDSA").to_pem()).kty
        'OKP'
        >>> Key.from_material(b"x" * 32).kty
        'oct'
        """
        if isinstance(material, Mapping):
            return cls.from_jwk(material)
        raw = material.encode("utf-8") if isinstance(material, str) else bytes(material)
        return _classified(raw)

    # ---------------------------------------------------------------- properties

    @property
    def is_private(self) -> bool:
        """Whether this key can sign (a private key or a secret)."""
        return self._private is not None or self._secret is not None

    @property
    def size(self) -> int:
        """Key strength in bits (RSA modulus, curve size, or secret length)."""
        if self._secret is not None:
            return len(self._secret) * 8
        public = self._public
        if isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            return public.key_size
        return 256 if self.crv == "Ed25519" else 456

    @property
    def default_alg(self) -> str:
        """The algorithm used when none is named: the bound one, else the key type's usual.

        >>> Key.generate("ES384").default_alg
        'ES384'
        """
        if self.alg is not None:
            return self.alg
        if self.kty == "EC":
            return _EC_ALG[cast(str, self.crv)]
        return _DEFAULT_ALG[self.kty]

    def algorithms(self) -> frozenset[str]:
        """Every algorithm this key may be used with.

        >>> sorted(Key.generate("ES256").algorithms())
        ['ES256']
        """
        if self.alg is not None:
            return frozenset((self.alg,))
        return frozenset(
            name
            for name, algorithm in ALGORITHMS.items()
            if algorithm.accepts(self.kty, self.crv)
            and (self._secret is None or len(self._secret) >= algorithm.min_secret_bytes)
        )

    # ---------------------------------------------------------------- prepared primitives

    def signer(self, alg: str) -> Sign:
        """A prepared ``sign(message) -> signature`` for ``alg`` (cached on the key).

        >>> key = Key.generate("HS256")
        >>> len(key.signer("HS256")(b"message"))
        32
        """
        sign = self._signers.get(alg)
        if sign is None:
            algorithm = self._algorithm(alg)
            if not self.is_private:
                raise InvalidKey("a public key cannot sign")
            if self.use == "enc" or (self.key_ops is not None and not self.key_ops & _KEY_OPS_SIGN):
                raise InvalidKey("the key is not for signing")
            sign = algorithm.make_signer(
                self._secret if self._secret is not None else self._private
            )
            self._signers[alg] = sign
        return sign

    def verifier(self, alg: str) -> Verify:
        """A prepared ``verify(message, signature) -> bool`` for ``alg`` (cached on the key).

        >>> key = Key.generate("HS256")
        >>> key.verifier("HS256")(b"m", key.signer("HS256")(b"m"))
        True
        """
        verify = self._verifiers.get(alg)
        if verify is None:
            algorithm = self._algorithm(alg)
            if self.use == "enc" or (
                self.key_ops is not None and not self.key_ops & _KEY_OPS_VERIFY
            ):
                raise InvalidKey("the key is not for verification")
            verify = algorithm.make_verifier(
                self._secret if self._secret is not None else self._public
            )
            self._verifiers[alg] = verify
        return verify

    def _algorithm(self, alg: str) -> Any:
        algorithm = ALGORITHMS.get(alg) if type(alg) is str else None
        if algorithm is None or alg not in self.algorithms():
            raise AlgorithmNotAllowed("algorithm does not fit the key")
        return algorithm

    # ---------------------------------------------------------------- export

    def public(self) -> Key:
        """The public half of this key, with the same kid and alg.

        >>> Key.generate("ES256").public().is_private
        False
        """
        if self._secret is not None:
            raise InvalidKey("a symmetric key has no public part")
        return Key(cast(PublicKey, self._public), alg=self.alg, kid=self.kid, use=self.use)

    def to_jwk(self, private: bool = False) -> dict[str, Any]:
        """Export as a JWK mapping; private members only when asked.

        >>> sorted(Key.generate("EdDSA").to_jwk())
        ['alg', 'crv', 'kid', 'kty', 'x']
        """
        if self._secret is not None and not private:
            raise InvalidKey("a symmetric key has no public JWK")
        jwk: dict[str, Any] = _public_members(self) if self._secret is None else {"kty": "oct"}
        if private:
            if not self.is_private:
                raise InvalidKey("not a private key")
            jwk.update(_private_members(self))
        for name, value in (("kid", self.kid), ("alg", self.alg), ("use", self.use)):
            if value is not None:
                jwk[name] = value
        if self.key_ops is not None:
            jwk["key_ops"] = sorted(self.key_ops)
        return jwk

    def to_pem(self, private: bool = False, *, password: bytes | None = None) -> bytes:
        """Export as PEM: SPKI for public keys, PKCS#8 (optionally encrypted) for private ones.

        >>> Key.generate("ES256").to_pem().startswith(b"-----BEGIN PUBLIC KEY-----")
        True
        """
        return self._serialize(serialization.Encoding.PEM, private, password)

    def to_der(self, private: bool = False, *, password: bytes | None = None) -> bytes:
        """Export as DER: SPKI for public keys, PKCS#8 for private ones.

        >>> Key.generate("ES256").to_der()[:1]
        b'0'
        """
        return self._serialize(serialization.Encoding.DER, private, password)

    def _serialize(
        self, encoding: serialization.Encoding, private: bool, password: bytes | None
    ) -> bytes:
        if self._secret is not None:
            raise InvalidKey("a symmetric key has no PEM or DER form")
        if private:
            if self._private is None:
                raise InvalidKey("not a private key")
            encryption: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(password)
                if password
                else serialization.NoEncryption()
            )
            return self._private.private_bytes(
                encoding, serialization.PrivateFormat.PKCS8, encryption
            )
        assert self._public is not None
        return self._public.public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)

    def thumbprint(self, hash_name: str = "sha256") -> str:
        """The RFC 7638 JWK thumbprint, base64url.

        >>> len(Key.generate("ES256").thumbprint())
        43
        """
        members = _public_members(self) if self._secret is None else _private_members(self)
        members["kty"] = self.kty
        canonical = {name: members[name] for name in _THUMBPRINT_MEMBERS[self.kty]}
        return b64.encode_str(hashlib.new(hash_name, json.dumps(canonical)).digest())

    def __repr__(self) -> str:
        kind = "private" if self.is_private else "public"
        return (
            f"Key(kty={self.kty!r}, crv={self.crv!r}, alg={self.alg!r}, kid={self.kid!r}, {kind})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self.kty == other.kty and self.thumbprint() == other.thumbprint()

    def __hash__(self) -> int:
        return hash((self.kty, self.thumbprint()))


class KeySet:
    """An ordered set of keys, looked up by ``kid`` and algorithm.

    >>> keys = KeySet([Key.generate("ES256", kid="a"), Key.generate("EdDSA", kid="b")])
    >>> keys.get("b").crv
    'Ed25519'
    """

    __slots__ = ("_by_kid", "keys")

    def __init__(self, keys: Iterable[Key]) -> None:
        self.keys: tuple[Key, ...] = tuple(keys)
        by_kid: dict[str, list[Key]] = {}
        for key in self.keys:
            if not isinstance(key, Key):
                raise InvalidKey("a KeySet holds Key objects")
            if key.kid is not None:
                by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = {kid: tuple(found) for kid, found in by_kid.items()}

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any] | str | bytes) -> KeySet:
        """Import a JWK Set; keys of types or curves not understood are left out (RFC 7517 §5).

        >>> KeySet.from_jwks({"keys": [{"kty": "unknown"}]}).keys
        ()
        """
        if isinstance(jwks, str | bytes):
            try:
                jwks = json.loads_object(jwks.encode() if isinstance(jwks, str) else jwks)
            except JoseError:
                raise InvalidKey("JWKS is not a JSON object") from None
        members = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(members, list):
            raise InvalidKey("JWKS has no 'keys' list")
        keys = []
        for member in members:
            try:
                keys.append(Key.from_jwk(member))
            except InvalidKey:
                continue
        return cls(keys)

    def to_jwks(self) -> dict[str, Any]:
        """The public JWK Set of the asymmetric keys (secrets are never published).

        >>> KeySet([Key.generate("HS256")]).to_jwks()
        {'keys': []}
        """
        return {"keys": [key.public().to_jwk() for key in self.keys if key.kty != "oct"]}

    def get(self, kid: str) -> Key | None:
        """The first key with this ``kid``, or ``None``."""
        found = self._by_kid.get(kid)
        return found[0] if found else None

    def candidates(self, kid: str | None, alg: str) -> list[Key]:
        """Keys that may verify a token with this ``kid`` (if any) and ``alg``.

        >>> key = Key.generate("ES256", kid="k1")
        >>> KeySet([key]).candidates("k1", "ES256") == [key]
        True
        """
        pool = self._by_kid.get(kid, ()) if kid is not None else self.keys
        return [key for key in pool if alg in key.algorithms()]

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeySet({[key.kid for key in self.keys]!r})"


def as_keys(key: Key | KeySet | Mapping[str, Any] | str | bytes) -> Key | KeySet:
    """Accept any form of verification key the API takes and return a Key or KeySet.

    >>> isinstance(as_keys({"keys": []}), KeySet)
    True
    """
    if isinstance(key, Key | KeySet):
        return key
    if isinstance(key, Mapping):
        return KeySet.from_jwks(key) if "keys" in key else Key.from_jwk(key)
    if isinstance(key, str | bytes | bytearray):
        return Key.from_material(bytes(key) if isinstance(key, bytearray) else key)
    raise InvalidKey("unsupported key type")


# -------------------------------------------------------------------- classification


def _key_shape(raw: bytes) -> str | None:
    """Which key format ``raw`` is in ("pem", "ssh", "jwk", "der"), or ``None`` for a secret.

    A shape is claimed only on evidence a random secret practically never shows: a PEM armour,
    an OpenSSH prefix, text that parses as a JSON object, or one whole DER SEQUENCE that opens
    like a key or certificate does. Material of a key's shape is never taken as a secret.
    """
    if b"-----BEGIN" in raw:
        return "pem"
    head = raw.lstrip()[:64]
    if head.startswith((b"ssh-", b"ecdsa-sha2-", b"sk-ssh-", b"sk-ecdsa-")):
        return "ssh"
    if head.startswith(b"{"):
        try:
            json.loads_object(raw)
        except JoseError:
            return None
        return "jwk"
    return "der" if _is_der_key_sequence(raw) else None


def _looks_like_key(raw: bytes) -> bool:
    return _key_shape(raw) is not None


def _is_der_key_sequence(raw: bytes) -> bool:
    """Whether ``raw`` is exactly one DER SEQUENCE whose first element is a SEQUENCE (SPKI,
    PKCS#8, SEC1 inside PKCS#8, X.509) or an INTEGER (PKCS#1, SEC1): the shape of DER keys."""
    if len(raw) < 4 or raw[0] != 0x30:
        return False
    first = raw[1]
    if first < 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(raw) < 3 + count:
            return False
        header, length = 2 + count, int.from_bytes(raw[2 : 2 + count], "big")
    return header + length == len(raw) and raw[header] in (0x30, 0x02)


@lru_cache(maxsize=32)
def _classified(raw: bytes) -> Key:
    shape = _key_shape(raw)
    if shape in ("pem", "ssh"):
        return Key.from_pem(raw)
    if shape == "jwk":
        return Key.from_jwk(raw)
    if shape == "der":
        return Key.from_der(raw)
    return Key(raw)


def _public_members(key: Key) -> dict[str, Any]:
    public = key._public
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {"kty": "RSA", "n": b64.encode_uint(numbers.n), "e": b64.encode_uint(numbers.e)}
    if isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_numbers()
        size = EC_CURVES[cast(str, key.crv)][1]
        return {
            "kty": "EC",
            "crv": key.crv,
            "x": b64.encode_uint(point.x, size),
            "y": b64.encode_uint(point.y, size),
        }
    assert isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": key.crv, "x": b64.encode_str(raw)}


def _private_members(key: Key) -> dict[str, Any]:
    if key._secret is not None:
        return {"k": b64.encode_str(key._secret)}
    private = key._private
    if isinstance(private, rsa.RSAPrivateKey):
        numbers = private.private_numbers()
        return {
            "d": b64.encode_uint(numbers.d),
            "p": b64.encode_uint(numbers.p),
            "q": b64.encode_uint(numbers.q),
            "dp": b64.encode_uint(numbers.dmp1),
            "dq": b64.encode_uint(numbers.dmq1),
            "qi": b64.encode_uint(numbers.iqmp),
        }
    if isinstance(private, ec.EllipticCurvePrivateKey):
        size = EC_CURVES[cast(str, key.crv)][1]
        return {"d": b64.encode_uint(private.private_numbers().private_value, size)}
    assert isinstance(private, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return {"d": b64.encode_str(raw)}


def _text(jwk: Mapping[str, Any], name: str) -> str:
    value = jwk[name]
    if not isinstance(value, str):
        raise InvalidKey("JWK member is not a string")
    return value


def _material_from_jwk(jwk: Mapping[str, Any]) -> KeyMaterial:
    kty = jwk.get("kty")
    if kty == "oct":
        return b64.decode(_text(jwk, "k"))
    if kty == "RSA":
        public_numbers = rsa.RSAPublicNumbers(
            b64.decode_uint(_text(jwk, "e")), b64.decode_uint(_text(jwk, "n"))
        )
        if "d" not in jwk:
            return public_numbers.public_key()
        d = b64.decode_uint(_text(jwk, "d"))
        if "p" in jwk:
            p, q = b64.decode_uint(_text(jwk, "p")), b64.decode_uint(_text(jwk, "q"))
            dp, dq = b64.decode_uint(_text(jwk, "dp")), b64.decode_uint(_text(jwk, "dq"))
            qi = b64.decode_uint(_text(jwk, "qi"))
        else:
            p, q = rsa.rsa_recover_prime_factors(public_numbers.n, public_numbers.e, d)
            dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
        return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public_numbers).private_key()
    if kty == "EC":
        crv = _text(jwk, "crv")
        if crv not in EC_CURVES:
            raise InvalidKey("unsupported curve")
        curve_class, size, _ = EC_CURVES[crv]
        x_raw, y_raw = b64.decode(_text(jwk, "x")), b64.decode(_text(jwk, "y"))
        if len(x_raw) != size or len(y_raw) != size:
            raise InvalidKey("EC coordinate of the wrong length")
        point = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x_raw, "big"), int.from_bytes(y_raw, "big"), curve_class()
        )
        if "d" not in jwk:
            return point.public_key()
        d_raw = b64.decode(_text(jwk, "d"))
        if len(d_raw) != size:
            raise InvalidKey("EC private value of the wrong length")
        return ec.EllipticCurvePrivateNumbers(int.from_bytes(d_raw, "big"), point).private_key()
    if kty == "OKP":
        crv = _text(jwk, "crv")
        x = b64.decode(_text(jwk, "x"))
        classes: dict[str, tuple[Any, Any]] = {
            "Ed25519": (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey),
            "Ed448": (ed448.Ed448PublicKey, ed448.Ed448PrivateKey),
        }
        if crv not in classes:
            raise InvalidKey("unsupported OKP curve")
        public_class, private_class = classes[crv]
        if "d" not in jwk:
            return cast(PublicKey, public_class.from_public_bytes(x))
        private = private_class.from_private_bytes(b64.decode(_text(jwk, "d")))
        derived = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        if derived != x:
            raise InvalidKey("OKP private and public parts do not match")
        return cast(PrivateKey, private)
    raise InvalidKey("unsupported key type")
