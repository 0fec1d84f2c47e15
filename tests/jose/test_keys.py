"""tessera.jose.keys: generation, every import and export format, thumbprints, key sets."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from tessera import jose

ASYMMETRIC = ["RS256", "PS256", "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed448"]
NOW = 1_700_000_000
CLAIMS = {"sub": "ada", "exp": NOW + 60}


def _works(signer: jose.Key, verifier: jose.Key, alg: str | None = None) -> bool:
    alg = alg or signer.default_alg
    token = jose.jwt.encode(CLAIMS, signer, alg=alg)
    return jose.jwt.decode(token, verifier, algorithms=[alg], now=NOW) == CLAIMS


@pytest.fixture(scope="module")
def keys() -> dict[str, jose.Key]:
    return {alg: jose.Key.generate(alg) for alg in ASYMMETRIC}


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_generated_key_is_bound_and_named_by_its_thumbprint(
    alg: str, keys: dict[str, jose.Key]
) -> None:
    key = keys[alg]
    assert key.alg == alg
    assert key.algorithms() == frozenset({alg})
    assert key.kid == key.thumbprint()
    assert key.is_private
    assert not key.public().is_private
    assert key.public().kid == key.kid


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_jwk_round_trip_public_and_private(alg: str, keys: dict[str, jose.Key]) -> None:
    key = keys[alg]
    private = jose.Key.from_jwk(key.to_jwk(private=True))
    public = jose.Key.from_jwk(jose.json.dumps(key.to_jwk()).decode())
    assert private.is_private and not public.is_private
    assert private.thumbprint() == public.thumbprint() == key.thumbprint()
    assert _works(private, public)
    assert "d" not in key.to_jwk()


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_pem_and_der_round_trip(alg: str, keys: dict[str, jose.Key]) -> None:
    key = keys[alg]
    assert _works(
        jose.Key.from_pem(key.to_pem(private=True), alg=alg), jose.Key.from_pem(key.to_pem())
    )
    assert _works(
        jose.Key.from_der(key.to_der(private=True), alg=alg), jose.Key.from_der(key.to_der())
    )
    encrypted = key.to_pem(private=True, password=b"correct horse")
    assert b"ENCRYPTED" in encrypted
    assert jose.Key.from_pem(encrypted, password=b"correct horse").thumbprint() == key.thumbprint()
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_pem(encrypted, password=b"wrong")


def test_pkcs1_and_sec1_pem_import() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs1_private = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )  # fmt: skip
    pkcs1_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert pkcs1_private.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert pkcs1_public.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert _works(jose.Key.from_pem(pkcs1_private), jose.Key.from_pem(pkcs1_public), "RS256")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    sec1 = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )  # fmt: skip
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert jose.Key.from_pem(sec1).kid == jose.Key(ec_key.public_key()).kid


def _certificate(private: Any) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tessera test")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .sign(private, hashes.SHA256())
    )


def test_x509_certificate_import_takes_its_public_key() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(private)
    from_pem = jose.Key.from_pem(certificate.public_bytes(serialization.Encoding.PEM))
    from_der = jose.Key.from_der(certificate.public_bytes(serialization.Encoding.DER))
    assert not from_pem.is_private
    assert from_pem.thumbprint() == from_der.thumbprint() == jose.Key(private).thumbprint()
    assert _works(jose.Key(private), from_pem)


@pytest.mark.parametrize(
    "private",
    [
        pytest.param(lambda: ed25519.Ed25519PrivateKey.generate(), id="ed25519"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="p256"),
        pytest.param(
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), id="rsa"
        ),
    ],
)
def test_openssh_keys_import(private: Any) -> None:
    key = private()
    openssh_public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    openssh_private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )  # fmt: skip
    signer = jose.Key.from_pem(openssh_private)
    verifier = jose.Key.from_pem(openssh_public)
    assert signer.is_private and not verifier.is_private
    assert _works(signer, verifier)


def test_rsa_jwk_without_crt_parameters_is_completed() -> None:
    key = jose.Key.generate("RS256")
    jwk = key.to_jwk(private=True)
    minimal = {name: jwk[name] for name in ("kty", "n", "e", "d")}
    assert _works(jose.Key.from_jwk(minimal), key.public(), "RS256")


@pytest.mark.parametrize(
    "change",
    [
        {"x": "AAAA"},
        {"crv": "P-192"},
        {"kty": "XYZ"},
        {"x": 5},
    ],
)
def test_malformed_ec_jwk_is_refused(change: dict[str, Any], keys: dict[str, jose.Key]) -> None:
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_jwk({**keys["ES256"].to_jwk(), **change})


def test_ec_point_not_on_the_curve_is_refused(keys: dict[str, jose.Key]) -> None:
    jwk = keys["ES256"].to_jwk()
    y = jose.b64.decode(jwk["y"])
    off_curve = jose.b64.encode_str(y[:-1] + bytes([y[-1] ^ 1]))
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_jwk({**jwk, "y": off_curve})


def test_okp_private_part_must_match_its_public_part() -> None:
    one, other = jose.Key.generate("EdDSA"), jose.Key.generate("EdDSA")
    mixed = {**one.to_jwk(private=True), "x": other.to_jwk()["x"]}
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_jwk(mixed)


@pytest.mark.parametrize("text", ["not json", "[]", '{"kty": "oct"}', '{"kty":"RSA","n":"AQAB"}'])
def test_malformed_jwk_text_is_refused(text: str) -> None:
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_jwk(text)


def test_symmetric_key_is_never_published() -> None:
    key = jose.Key.generate("HS256")
    assert key.kid is None
    with pytest.raises(jose.InvalidKey):
        key.to_jwk()
    with pytest.raises(jose.InvalidKey):
        key.public()
    with pytest.raises(jose.InvalidKey):
        key.to_pem()
    assert jose.Key.from_jwk(key.to_jwk(private=True)).to_jwk(private=True) == key.to_jwk(
        private=True
    )
    assert jose.KeySet([key]).to_jwks() == {"keys": []}


def test_unsupported_curves_and_key_types_are_refused() -> None:
    with pytest.raises(jose.InvalidKey):
        jose.Key(ec.generate_private_key(ec.SECP224R1()))
    with pytest.raises(jose.InvalidKey):
        jose.Key("not bytes")  # type: ignore[arg-type]
    with pytest.raises(jose.InvalidKey):
        jose.Key.generate("none")
    assert jose.Key(ed448.Ed448PrivateKey.generate()).crv == "Ed448"


def test_key_set_publishes_public_keys_and_skips_what_it_cannot_use(
    keys: dict[str, jose.Key],
) -> None:
    keyset = jose.KeySet([keys["ES256"], keys["EdDSA"]])
    jwks = keyset.to_jwks()
    assert [member["kid"] for member in jwks["keys"]] == [keys["ES256"].kid, keys["EdDSA"].kid]
    assert all("d" not in member for member in jwks["keys"])
    mixed = {"keys": [*jwks["keys"], {"kty": "unknown"}, {"kty": "EC", "crv": "P-256"}, "junk"]}
    imported = jose.KeySet.from_jwks(jose.json.dumps(mixed))
    assert len(imported) == 2
    assert imported.get(keys["EdDSA"].kid or "").crv == "Ed25519"  # type: ignore[union-attr]
    for bad in ("{}", '{"keys": {}}', "[]", "nope"):
        with pytest.raises(jose.InvalidKey):
            jose.KeySet.from_jwks(bad)


def test_rfc7638_thumbprint_example() -> None:
    """RFC 7638 §3.1: the example RSA key and its published thumbprint."""
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    key = jose.Key.from_jwk(
        {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    )
    assert key.thumbprint() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_keys_compare_by_thumbprint(keys: dict[str, jose.Key]) -> None:
    assert keys["ES256"] == keys["ES256"].public()
    assert keys["ES256"] != keys["ES384"]
    assert len({keys["ES256"], keys["ES256"].public()}) == 1
    shown = repr(keys["ES256"])
    assert keys["ES256"].to_jwk(private=True)["d"] not in shown
    assert "private" in shown
