"""Secure by default: each attack on JWT verification the field knows, refused by a named test."""

from __future__ import annotations

import hmac
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tessera import jose
from tessera.jose import algorithms

from .forge import forge, forge_claims, segment

NOW = 1_700_000_000
CLAIMS: dict[str, Any] = {"sub": "ada", "iat": NOW, "exp": NOW + 600}


@pytest.fixture(scope="module")
def es256() -> jose.Key:
    return jose.Key.generate("ES256")


@pytest.fixture(scope="module")
def rs256() -> jose.Key:
    return jose.Key.generate("RS256")


@pytest.fixture(scope="module")
def hs256() -> jose.Key:
    return jose.Key.generate("HS256")


def decode(token: str, key: Any, **options: Any) -> dict[str, Any]:
    options.setdefault("algorithms", ["ES256", "RS256", "HS256", "EdDSA"])
    options.setdefault("now", NOW)
    return jose.jwt.decode(token, key, **options)


# ---------------------------------------------------------------- algorithm: "none" and allow-lists


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE", "none ", ""])
def test_none_is_never_accepted_in_any_spelling(
    spelling: str, es256: jose.Key, hs256: jose.Key
) -> None:
    for key in (es256.public(), hs256):
        for signature in (b"", b"\x00" * 32):
            token = forge({"alg": spelling, "typ": "JWT"}, CLAIMS, signature=signature)
            with pytest.raises(jose.InvalidToken):
                decode(token, key)


def test_none_cannot_be_put_in_the_allow_list(hs256: jose.Key) -> None:
    with pytest.raises(jose.UsageError):
        jose.Verifier(hs256, algorithms=["none"])
    with pytest.raises(jose.UsageError):
        jose.Verifier(hs256, algorithms=["HS256", "none"])


@pytest.mark.parametrize("allow_list", [None, [], (), set(), "HS256"])
def test_empty_or_missing_allow_list_is_an_error(allow_list: Any, hs256: jose.Key) -> None:
    with pytest.raises(jose.UsageError):
        jose.Verifier(hs256, algorithms=allow_list)


@pytest.mark.parametrize("alg", [None, 256, ["HS256"], {"name": "HS256"}, True])
def test_alg_that_is_not_a_string_is_refused(alg: Any, hs256: jose.Key) -> None:
    token = forge({"alg": alg}, CLAIMS, hs256, "HS256")
    with pytest.raises(jose.MalformedToken):
        decode(token, hs256)


def test_alg_not_in_the_allow_list_is_refused() -> None:
    unbound = jose.Key.from_secret(b"s" * 64)  # fit for HS256, HS384 and HS512
    token = jose.jwt.encode(CLAIMS, unbound, alg="HS256")
    with pytest.raises(jose.AlgorithmNotAllowed):
        decode(token, unbound, algorithms=["HS512"])


def test_alg_the_key_is_not_bound_to_is_refused(es256: jose.Key) -> None:
    other = jose.Key.generate("ES384")
    token = jose.jwt.encode(CLAIMS, other)
    with pytest.raises(jose.AlgorithmNotAllowed):
        decode(token, es256.public(), algorithms=["ES256", "ES384"])


def test_verifier_refuses_an_allow_list_that_fits_no_key(es256: jose.Key) -> None:
    with pytest.raises(jose.UsageError):
        jose.Verifier(es256.public(), algorithms=["RS256"])


# ---------------------------------------------------------------- key confusion and key strength


def _public_forms(key: jose.Key) -> list[bytes | str]:
    public = key.public()
    return [
        public.to_pem(),
        public.to_pem().decode(),
        public.to_der(),
        jose.jwt.json.dumps(public.to_jwk()),
        b"\n  " + public.to_pem(),
    ]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_public_key_is_never_an_hmac_secret(alg: str) -> None:
    key = jose.Key.generate(alg)
    for material in _public_forms(key):
        raw = material.encode() if isinstance(material, str) else material
        mac = hmac.new(raw, digestmod="sha256")
        header = segment({"alg": "HS256", "typ": "JWT"})
        body = segment(CLAIMS)
        mac.update(f"{header}.{body}".encode())
        token = f"{header}.{body}.{segment(mac.digest())}"
        with pytest.raises(jose.InvalidToken):
            jose.jwt.decode(token, material, algorithms=[alg, "HS256"], now=NOW)
        with pytest.raises(jose.InvalidKey):
            jose.Key.from_secret(raw)


def test_openssh_public_key_is_never_an_hmac_secret() -> None:
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    openssh = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert jose.Key.from_material(openssh).kty == "EC"
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_secret(openssh)


def test_damaged_public_key_is_refused_not_taken_as_a_secret(es256: jose.Key) -> None:
    der = bytearray(es256.public().to_der())
    der[-5] ^= 0xFF  # still one DER SEQUENCE, no longer a valid point
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_material(bytes(der))
    pem = es256.public().to_pem().replace(b"A", b"B", 3)
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_material(pem)


def test_rsa_key_below_2048_bits_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(jose.InvalidKey):
        jose.Key(weak)
    with pytest.raises(jose.InvalidKey):
        jose.Key(weak.public_key())
    from cryptography.hazmat.primitives import serialization

    pem = weak.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(jose.InvalidKey):
        jose.jwt.decode("a.b.c", pem, algorithms=["RS256"])


@pytest.mark.parametrize(("alg", "minimum"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_hmac_secret_shorter_than_the_hash_output_is_refused(alg: str, minimum: int) -> None:
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_secret(b"s" * (minimum - 1), alg=alg)
    assert jose.Key.from_secret(b"s" * minimum, alg=alg).alg == alg
    short_for_this_alg = jose.Key.from_secret(b"s" * 32)
    if minimum > 32:
        assert alg not in short_for_this_alg.algorithms()
        with pytest.raises(jose.UsageError):
            jose.Verifier(short_for_this_alg, algorithms=[alg])


def test_jwk_whose_use_is_enc_cannot_verify(es256: jose.Key) -> None:
    jwk = {**es256.public().to_jwk(), "use": "enc"}
    token = jose.jwt.encode(CLAIMS, es256)
    with pytest.raises(jose.InvalidKey):
        decode(token, jwk, algorithms=["ES256"])


def test_jwk_whose_key_ops_forbid_verify_cannot_verify(es256: jose.Key) -> None:
    jwk = {**es256.public().to_jwk(), "key_ops": ["encrypt"]}
    token = jose.jwt.encode(CLAIMS, es256)
    with pytest.raises(jose.InvalidKey):
        decode(token, jwk, algorithms=["ES256"])
    allowed = {**es256.public().to_jwk(), "key_ops": ["verify"]}
    assert decode(token, allowed, algorithms=["ES256"])["sub"] == "ada"


def test_jwk_alg_binds_the_key(rs256: jose.Key) -> None:
    bound = jose.Key.from_jwk({**rs256.to_jwk(private=True), "alg": "PS256"})
    assert bound.algorithms() == frozenset({"PS256"})
    token = jose.jwt.encode(CLAIMS, rs256, alg="RS256")
    with pytest.raises(jose.AlgorithmNotAllowed):
        decode(token, bound.public(), algorithms=["RS256", "PS256"])
    with pytest.raises(jose.InvalidKey):
        jose.Key.from_jwk({**rs256.to_jwk(), "alg": "ES256"})


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_header_that_names_its_own_key_is_never_trusted(member: str, es256: jose.Key) -> None:
    attacker = jose.Key.generate("ES256")
    values = {
        "jwk": attacker.public().to_jwk(),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIB"],
    }
    token = forge({"alg": "ES256", member: values[member]}, CLAIMS, attacker, "ES256")
    with pytest.raises(jose.InvalidSignature):
        decode(token, es256.public(), algorithms=["ES256"])


@pytest.mark.parametrize("kid", [1, 3.5, ["a"], {"k": 1}, True])
def test_kid_that_is_not_a_string_is_refused(kid: Any, hs256: jose.Key) -> None:
    token = forge({"alg": "HS256", "kid": kid}, CLAIMS, hs256, "HS256")
    with pytest.raises(jose.MalformedToken):
        decode(token, hs256)


def test_unknown_crit_extension_is_refused(hs256: jose.Key) -> None:
    token = forge({"alg": "HS256", "crit": ["exp"], "exp": NOW}, CLAIMS, hs256, "HS256")
    with pytest.raises(jose.UnsupportedHeader):
        decode(token, hs256)


@pytest.mark.parametrize(
    "crit",
    [[], "b64", ["alg"], ["missing"], [1]],
    ids=["empty", "string", "registered", "absent", "int"],
)
def test_malformed_crit_is_refused(crit: Any, hs256: jose.Key) -> None:
    token = forge({"alg": "HS256", "crit": crit}, CLAIMS, hs256, "HS256")
    with pytest.raises(jose.InvalidToken):
        decode(token, hs256)


def test_jwt_never_uses_an_unencoded_payload(hs256: jose.Key) -> None:
    token = forge({"alg": "HS256", "b64": False, "crit": ["b64"]}, CLAIMS, hs256, "HS256")
    with pytest.raises(jose.UnsupportedHeader):
        decode(token, hs256)
    with pytest.raises(jose.UnsupportedHeader):
        jose.jwt.encode(CLAIMS, hs256, headers={"b64": False, "crit": ["b64"]})


def test_unknown_non_critical_header_members_are_ignored(hs256: jose.Key) -> None:
    token = forge({"alg": "HS256", "x-trace": {"id": 7}, "cty": "JWT"}, CLAIMS, hs256, "HS256")
    assert decode(token, hs256) == CLAIMS


# ---------------------------------------------------------------- strict encoding


def test_token_must_have_exactly_three_segments(hs256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, hs256)
    for bad in (token + ".", token.rsplit(".", 1)[0], "a.b", "abc", "", "....", token + ".x"):
        with pytest.raises(jose.MalformedToken):
            decode(bad, hs256)


def test_base64url_padding_is_refused(hs256: jose.Key) -> None:
    header, body, signature = jose.jwt.encode({**CLAIMS, "pad": "x"}, hs256).split(".")
    padded = [part + "=" * (-len(part) % 4) for part in (header, body, signature)]
    for index in range(3):
        parts = [header, body, signature]
        if parts[index] == padded[index]:
            continue
        parts[index] = padded[index]
        with pytest.raises(jose.MalformedToken):
            decode(".".join(parts), hs256)


def test_standard_base64_alphabet_is_refused(hs256: jose.Key) -> None:
    for _ in range(64):
        token = jose.jwt.encode(
            {**CLAIMS, "jti": jose.b64.encode_str(__import__("os").urandom(12))}, hs256
        )
        signature = token.rsplit(".", 1)[1]
        if "-" in signature or "_" in signature:
            break
    swapped = signature.replace("-", "+").replace("_", "/")
    with pytest.raises(jose.MalformedToken):
        decode(token.rsplit(".", 1)[0] + "." + swapped, hs256)


def test_base64url_with_nonzero_unused_bits_is_refused() -> None:
    assert jose.b64.decode("QQ") == b"A"
    for other in ("QR", "QS", "QT", "QUI="[:2] + "x"):
        with pytest.raises(jose.MalformedToken):
            jose.b64.decode(other)
    with pytest.raises(jose.MalformedToken):
        jose.b64.decode("Q")  # a length no encoding produces


def test_signature_with_nonzero_unused_bits_is_refused(hs256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, hs256)
    head, signature = token.rsplit(".", 1)
    # HS256: 32 bytes → 43 characters; the last one carries 2 unused bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    sibling = alphabet[last | 1]
    assert sibling != signature[-1] or last & 1
    with pytest.raises(jose.MalformedToken):
        decode(f"{head}.{signature[:-1]}{sibling}", hs256)


def test_non_ascii_or_non_utf8_token_is_refused(hs256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, hs256)
    with pytest.raises(jose.MalformedToken):
        decode(token + "é", hs256)
    bad_header = forge(b'{"alg":"HS256","x":"\xff"}', CLAIMS, hs256, "HS256")
    with pytest.raises(jose.MalformedToken):
        decode(bad_header, hs256)
    bad_payload = forge({"alg": "HS256"}, b'{"sub":"\xc3\x28"}', hs256, "HS256")
    with pytest.raises(jose.MalformedToken):
        decode(bad_payload, hs256)


@pytest.mark.parametrize("header", [b"[]", b'"HS256"', b"1", b"null", b""])
def test_header_must_be_a_json_object(header: bytes, hs256: jose.Key) -> None:
    with pytest.raises(jose.MalformedToken):
        decode(forge(header, CLAIMS, hs256, "HS256"), hs256)


@pytest.mark.parametrize("payload", [b"[]", b'"ada"', b"1", b"null", b"", b"{"])
def test_payload_must_be_a_json_object(payload: bytes, hs256: jose.Key) -> None:
    with pytest.raises(jose.MalformedToken):
        decode(forge({"alg": "HS256"}, payload, hs256, "HS256"), hs256)


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_nan_and_infinity_are_not_json(value: bytes, hs256: jose.Key) -> None:
    payload = b'{"sub":"ada","exp":' + value + b"}"
    with pytest.raises(jose.MalformedToken):
        decode(forge({"alg": "HS256"}, payload, hs256, "HS256"), hs256)


def test_duplicate_member_names_keep_the_lexically_last(hs256: jose.Key) -> None:
    header = b'{"alg":"none","alg":"HS256"}'
    payload = b'{"sub":"mallory","sub":"ada","exp":' + str(NOW + 60).encode() + b"}"
    assert decode(forge(header, payload, hs256, "HS256"), hs256)["sub"] == "ada"
    refused_first = b'{"alg":"HS256","alg":"none"}'
    with pytest.raises(jose.InvalidToken):
        decode(forge(refused_first, payload, hs256, "HS256"), hs256)


def test_oversized_token_is_refused_before_parsing(hs256: jose.Key) -> None:
    token = jose.jwt.encode({**CLAIMS, "blob": "x" * 70_000}, hs256)
    with pytest.raises(jose.MalformedToken, match="too large"):
        decode(token, hs256)
    verifier = jose.Verifier(hs256, algorithms=["HS256"], max_token_bytes=256)
    with pytest.raises(jose.MalformedToken, match="too large"):
        verifier.verify(jose.jwt.encode({**CLAIMS, "blob": "x" * 300}, hs256), now=NOW)


def test_deeply_nested_claims_are_refused(hs256: jose.Key) -> None:
    nested = b"[" * 40 + b"]" * 40
    payload = b'{"exp":' + str(NOW + 60).encode() + b',"n":' + nested + b"}"
    with pytest.raises(jose.MalformedToken, match="deeply"):
        decode(forge({"alg": "HS256"}, payload, hs256, "HS256"), hs256)
    many_shallow = {**CLAIMS, "list": [{"a": [1]} for _ in range(50)]}
    assert decode(jose.jwt.encode(many_shallow, hs256), hs256)["list"][49] == {"a": [1]}


def test_oversized_header_is_refused(hs256: jose.Key) -> None:
    token = forge({"alg": "HS256", "x": "y" * 5000}, CLAIMS, hs256, "HS256")
    with pytest.raises(jose.MalformedToken):
        decode(token, hs256)


# ---------------------------------------------------------------- signatures


def test_ecdsa_signature_must_be_exactly_r_and_s(es256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, es256)
    head = token.rsplit(".", 1)[0]
    der = es256._private.sign(head.encode(), ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr]
    with pytest.raises(jose.InvalidSignature):
        decode(f"{head}.{segment(der)}", es256.public())
    raw = jose.b64.decode(token.rsplit(".", 1)[1])
    for bad in (raw[:-1], raw + b"\x00", b"\x00" + raw):
        with pytest.raises(jose.InvalidSignature):
            decode(f"{head}.{segment(bad)}", es256.public())


def test_ecdsa_zero_signature_is_refused_psychic_signatures(es256: jose.Key) -> None:
    head = jose.jwt.encode(CLAIMS, es256).rsplit(".", 1)[0]
    with pytest.raises(jose.InvalidSignature):
        decode(f"{head}.{segment(bytes(64))}", es256.public())


def test_ecdsa_r_or_s_outside_the_group_order_is_refused(es256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, es256)
    head, signature = token.rsplit(".", 1)
    raw = jose.b64.decode(signature)
    order = algorithms.EC_CURVES["P-256"][2]
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    for bad_r, bad_s in ((r + order, s), (r, s + order), (order, s), (r, order)):
        if bad_r >= 2**256 or bad_s >= 2**256:
            continue
        forged = bad_r.to_bytes(32, "big") + bad_s.to_bytes(32, "big")
        with pytest.raises(jose.InvalidSignature):
            decode(f"{head}.{segment(forged)}", es256.public())


def test_ecdsa_high_s_malleability_is_checked_by_the_primitive(es256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, es256)
    head, signature = token.rsplit(".", 1)
    raw = jose.b64.decode(signature)
    order = algorithms.EC_CURVES["P-256"][2]
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    twin = r.to_bytes(32, "big") + (order - s).to_bytes(32, "big")
    # (r, n - s) is the other valid ECDSA signature of the same message: both verify, as in
    # every ECDSA JWS implementation; what matters is that nothing outside [1, n-1] does.
    assert decode(f"{head}.{segment(twin)}", es256.public()) == CLAIMS
    assert decode_dss_signature  # the primitive's own DER codec is what we use


def test_pss_salt_must_equal_the_hash_length(rs256: jose.Key) -> None:
    rs256 = jose.Key(rs256._private)  # type: ignore[arg-type]  # the same RSA key, not bound to RS256
    token = jose.jwt.encode(CLAIMS, rs256, alg="PS256")
    head = token.rsplit(".", 1)[0]
    private = rs256._private
    assert isinstance(private, rsa.RSAPrivateKey)
    for salt in (0, 20, 64):
        signature = private.sign(
            head.encode(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt),
            hashes.SHA256(),
        )
        with pytest.raises(jose.InvalidSignature):
            decode(f"{head}.{segment(signature)}", rs256.public(), algorithms=["PS256"])
    assert decode(token, rs256.public(), algorithms=["PS256"]) == CLAIMS


def test_rsa_signature_must_have_the_modulus_length(rs256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, rs256)
    head, signature = token.rsplit(".", 1)
    raw = jose.b64.decode(signature)
    for bad in (b"\x00" + raw, raw[1:] if raw[0] == 0 else raw[:-1]):
        with pytest.raises(jose.InvalidSignature):
            decode(f"{head}.{segment(bad)}", rs256.public())


def test_hmac_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(algorithms.hmac, "compare_digest", spy)
    key = jose.Key.generate("HS256")  # a fresh key, so its verifier is prepared under the spy
    token = jose.jwt.encode(CLAIMS, key)
    assert decode(token, key) == CLAIMS
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(jose.InvalidToken):
        decode(tampered, key)
    assert len(calls) >= 1


# ---------------------------------------------------------------- claims


def test_exp_is_required_by_default(hs256: jose.Key) -> None:
    token = jose.jwt.encode({"sub": "ada"}, hs256)
    with pytest.raises(jose.MissingClaim) as refused:
        decode(token, hs256)
    assert refused.value.claim == "exp"
    assert decode(token, hs256, require=()) == {"sub": "ada"}


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["1700000600", True, "soon", [1], {"t": 1}])
def test_time_claims_must_be_numbers(name: str, value: Any, hs256: jose.Key) -> None:
    token = forge_claims({**CLAIMS, name: value}, hs256)
    with pytest.raises(jose.ClaimError) as refused:
        decode(token, hs256)
    assert refused.value.claim == name


def test_expired_token_is_refused_and_leeway_is_explicit(hs256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, hs256)
    exp = CLAIMS["exp"]
    assert decode(token, hs256, now=exp - 1) == CLAIMS
    with pytest.raises(jose.ExpiredToken):
        decode(token, hs256, now=exp)
    assert decode(token, hs256, now=exp + 29, leeway=30) == CLAIMS
    with pytest.raises(jose.ExpiredToken):
        decode(token, hs256, now=exp + 30, leeway=30)


def test_token_before_nbf_is_refused(hs256: jose.Key) -> None:
    token = jose.jwt.encode({**CLAIMS, "nbf": NOW + 10}, hs256)
    with pytest.raises(jose.NotYetValid):
        decode(token, hs256, now=NOW + 9)
    assert decode(token, hs256, now=NOW + 10)["sub"] == "ada"
    assert decode(token, hs256, now=NOW + 5, leeway=5)["sub"] == "ada"


def test_iat_in_the_future_beyond_leeway_is_refused(hs256: jose.Key) -> None:
    token = jose.jwt.encode({**CLAIMS, "iat": NOW + 60}, hs256)
    with pytest.raises(jose.IssuedInTheFuture):
        decode(token, hs256)
    assert decode(token, hs256, leeway=60)["sub"] == "ada"


def test_max_age_is_measured_from_iat(hs256: jose.Key) -> None:
    token = jose.jwt.encode(CLAIMS, hs256)
    assert decode(token, hs256, max_age=300, now=NOW + 300)["sub"] == "ada"
    with pytest.raises(jose.ExpiredToken):
        decode(token, hs256, max_age=300, now=NOW + 301)
    without_iat = jose.jwt.encode({"sub": "ada", "exp": NOW + 600}, hs256)
    with pytest.raises(jose.MissingClaim):
        decode(without_iat, hs256, max_age=300)


@pytest.mark.parametrize(
    "iss",
    [
        "https://id.example.com.evil",
        "https://id.example",
        "id.example.com",
        "HTTPS://ID.EXAMPLE.COM",
        "",
    ],
)
def test_issuer_is_an_exact_match_never_a_substring(iss: Any, hs256: jose.Key) -> None:
    """CVE-2024-53861: a partial issuer comparison accepted look-alike issuers."""
    token = jose.jwt.encode({**CLAIMS, "iss": iss}, hs256)
    with pytest.raises(jose.InvalidIssuer):
        decode(token, hs256, issuer="https://id.example.com")
    with pytest.raises(jose.InvalidIssuer):
        decode(token, hs256, issuer={"https://id.example.com", "https://other.example"})


def test_issuer_set_accepts_any_member_exactly(hs256: jose.Key) -> None:
    token = jose.jwt.encode({**CLAIMS, "iss": "https://b.example"}, hs256)
    assert decode(token, hs256, issuer={"https://a.example", "https://b.example"})["iss"]
    with pytest.raises(jose.MissingClaim):
        decode(jose.jwt.encode(CLAIMS, hs256), hs256, issuer="https://a.example")


def test_audience_string_or_list_any_of(hs256: jose.Key) -> None:
    one = jose.jwt.encode({**CLAIMS, "aud": "orders"}, hs256)
    many = jose.jwt.encode({**CLAIMS, "aud": ["billing", "orders"]}, hs256)
    assert decode(one, hs256, audience="orders")["aud"] == "orders"
    assert decode(many, hs256, audience="orders")["aud"] == ["billing", "orders"]
    assert decode(many, hs256, audience={"shipping", "billing"})["aud"]
    with pytest.raises(jose.InvalidAudience):
        decode(many, hs256, audience="shipping")
    with pytest.raises(jose.InvalidAudience):
        decode(one, hs256, audience="order")  # never a substring


def test_token_with_an_audience_is_refused_when_none_is_expected(hs256: jose.Key) -> None:
    token = jose.jwt.encode({**CLAIMS, "aud": "orders"}, hs256)
    with pytest.raises(jose.InvalidAudience):
        decode(token, hs256)


def test_missing_audience_is_refused_when_one_is_expected(hs256: jose.Key) -> None:
    with pytest.raises(jose.MissingClaim):
        decode(jose.jwt.encode(CLAIMS, hs256), hs256, audience="orders")


@pytest.mark.parametrize("aud", [1, ["orders", 2], {"orders": 1}, True, [["orders"]]])
def test_audience_must_be_a_string_or_list_of_strings(aud: Any, hs256: jose.Key) -> None:
    with pytest.raises(jose.ClaimError):
        decode(forge_claims({**CLAIMS, "aud": aud}, hs256), hs256, audience="orders")


@pytest.mark.parametrize("name", ["sub", "jti", "iss"])
def test_sub_jti_and_iss_must_be_strings(name: str, hs256: jose.Key) -> None:
    token = forge_claims({**CLAIMS, name: 42}, hs256)
    with pytest.raises(jose.ClaimError) as refused:
        decode(token, hs256)
    assert refused.value.claim == name


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
def test_typ_is_compared_case_insensitively_with_optional_application_prefix(
    typ: str, es256: jose.Key
) -> None:
    token = jose.jwt.encode(CLAIMS, es256, headers={"typ": typ})
    assert decode(token, es256.public(), typ="at+jwt") == CLAIMS
    assert decode(token, es256.public(), typ="application/at+jwt") == CLAIMS


@pytest.mark.parametrize("typ", ["JWT", "at+jwt2", None, 7])
def test_unexpected_typ_is_refused(typ: Any, es256: jose.Key) -> None:
    header = {"alg": "ES256"} if typ is None else {"alg": "ES256", "typ": typ}
    token = forge(header, CLAIMS, es256, "ES256")
    with pytest.raises(jose.InvalidType):
        decode(token, es256.public(), typ="at+jwt")


# ---------------------------------------------------------------- order of checks and error hygiene


def test_bad_signature_wins_over_every_claim_error(hs256: jose.Key) -> None:
    """CVE-2024-51744: an expired token with a bad signature must report the signature."""
    other = jose.Key.generate("HS256")
    for claims in (
        {"sub": "ada", "exp": NOW - 10},
        {"sub": "ada", "exp": NOW + 60, "nbf": NOW + 50},
        {"sub": "ada"},
        {"sub": 7, "exp": NOW + 60, "aud": "x"},
    ):
        token = forge_claims(claims, other)
        with pytest.raises(jose.InvalidSignature):
            decode(token, hs256, issuer="https://id.example", audience="orders")
    broken_payload = forge({"alg": "HS256"}, b"not json", signature=b"\x00" * 32)
    with pytest.raises(jose.InvalidSignature):
        decode(broken_payload, hs256)


def test_errors_never_echo_the_token_or_the_key(hs256: jose.Key, es256: jose.Key) -> None:
    """CVE-2025-65015: error messages must not leak token or key material."""
    secret = hs256.to_jwk(private=True)["k"]
    cases: list[tuple[str, Any, dict[str, Any]]] = [
        (jose.jwt.encode({"sub": "ada", "exp": NOW - 1}, hs256), hs256, {}),
        (jose.jwt.encode(CLAIMS, hs256)[:-3] + "AAA", hs256, {}),
        (jose.jwt.encode({**CLAIMS, "aud": "x"}, hs256), hs256, {"audience": "y"}),
        (jose.jwt.encode({**CLAIMS, "iss": "x"}, hs256), hs256, {"issuer": "y"}),
        (forge({"alg": "HS256", "kid": 1}, CLAIMS, hs256, "HS256"), hs256, {}),
        ("eyJhbGciOiJIUzI1NiJ9.e30.bm90LWEtc2lnbmF0dXJl!", hs256, {}),
        (
            jose.jwt.encode(CLAIMS, es256),
            es256.public(),
            {"algorithms": ["RS256", "ES256"], "typ": "x"},
        ),
    ]
    for token, key, options in cases:
        with pytest.raises(jose.InvalidToken) as refused:
            decode(token, key, **options)
        text = f"{refused.value!s} {refused.value!r} {refused.value.args!r}"
        for part in token.split("."):
            if len(part) >= 8:
                assert part not in text
        assert secret not in text


def test_every_error_has_a_stable_distinct_code() -> None:
    codes = {
        jose.InvalidToken: "invalid_token",
        jose.MalformedToken: "malformed",
        jose.AlgorithmNotAllowed: "algorithm_not_allowed",
        jose.UnsupportedHeader: "unsupported_header",
        jose.KeyNotFound: "key_not_found",
        jose.InvalidSignature: "invalid_signature",
        jose.InvalidType: "invalid_typ",
        jose.ClaimError: "invalid_claim",
        jose.MissingClaim: "missing_claim",
        jose.ExpiredToken: "expired",
        jose.NotYetValid: "not_yet_valid",
        jose.IssuedInTheFuture: "iat_in_future",
        jose.InvalidIssuer: "invalid_issuer",
        jose.InvalidAudience: "invalid_audience",
        jose.InvalidKey: "invalid_key",
        jose.UsageError: "usage_error",
    }
    for error, code in codes.items():
        assert error.code == code
        assert issubclass(error, jose.JoseError)
    assert len(set(codes.values())) == len(codes)
    token_errors = [e for e in codes if e not in (jose.InvalidKey, jose.UsageError)]
    assert all(issubclass(e, jose.InvalidToken) for e in token_errors)


def test_the_real_clock_is_used_when_now_is_not_given(hs256: jose.Key) -> None:
    fresh = jose.jwt.encode({"sub": "ada", "exp": time.time() + 60}, hs256)
    assert jose.jwt.decode(fresh, hs256, algorithms=["HS256"])["sub"] == "ada"
    stale = jose.jwt.encode({"sub": "ada", "exp": time.time() - 1}, hs256)
    with pytest.raises(jose.ExpiredToken):
        jose.jwt.decode(stale, hs256, algorithms=["HS256"])


def test_any_audience_is_an_explicit_opt_out_only(hs256: jose.Key) -> None:
    token = jose.jwt.encode({**CLAIMS, "aud": ["orders", "billing"]}, hs256)
    with pytest.raises(jose.InvalidAudience):
        decode(token, hs256)
    verifier = jose.Verifier(hs256, algorithms=["HS256"], audience=jose.ANY_AUDIENCE)
    assert verifier.verify(token, now=NOW)["aud"] == ["orders", "billing"]
    malformed = forge_claims({**CLAIMS, "aud": [1]}, hs256)
    with pytest.raises(jose.ClaimError):
        verifier.verify(malformed, now=NOW)
