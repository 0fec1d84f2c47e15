"""The published JOSE examples, each read from a data file by one parametrized test.

- RFC 7515 Appendix A (``vectors/rfc7515_appendix_a.json``, typed from the RFC): A.1–A.4 verify,
  A.5 (``alg: none``) is refused whatever allow-list or key it is given.
- RFC 7520 §4, the JOSE cookbook (``../shared/vectors/jose-cookbook/jws``): every serialization
  verifies with the cookbook's keys, and the deterministic algorithms reproduce it byte for byte.
- RFC 8037 (``jose-cookbook/curve25519``): Ed25519 signs exactly as published; the thumbprint.
- RFC 7797 (``jose-cookbook/rfc7797``): ``b64: false`` with ``crit`` verifies, detached or not;
  without ``crit`` it is refused, and a JWT never carries ``b64``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tessera import jose
from tessera.jose import algorithms, b64

HERE = Path(__file__).resolve().parent
RFC7515: list[dict[str, Any]] = json.loads(
    (HERE / "vectors" / "rfc7515_appendix_a.json").read_text("utf-8")
)["examples"]
RFC8037: dict[str, Any] = json.loads(
    (HERE / "vectors" / "rfc8037_appendix_a.json").read_text("utf-8")
)

SIGNED_EXAMPLES = [pytest.param(ex, id=ex["section"]) for ex in RFC7515 if ex["alg"] != "none"]
# "the first three examples all represent JSON Web Tokens" (RFC 7515, Appendix A).
JWT_EXAMPLES = [
    pytest.param(ex, id=ex["section"]) for ex in RFC7515 if ex["section"] in ("A.1", "A.2", "A.3")
]
DETERMINISTIC_EXAMPLES = [
    pytest.param(ex, id=ex["section"])
    for ex in RFC7515
    if ex["deterministic"] and ex["alg"] != "none"
]
RANDOMIZED_EXAMPLES = [
    pytest.param(ex, id=ex["section"]) for ex in RFC7515 if not ex["deterministic"]
]
(A5,) = [ex for ex in RFC7515 if ex["section"] == "A.5"]
# A.1–A.3 are JWTs that expired in 2011; claims are checked as of just before that.
RFC7515_NOW = 1300819380 - 60

# RFC 7520 §4: the cookbook's JWS examples, named so that a missing file fails instead of
# silently shrinking the parametrization.
COOKBOOK_JWS = [
    "4_1.rsa_v15_signature",
    "4_2.rsa-pss_signature",
    "4_3.ecdsa_signature",
    "4_4.hmac-sha2_integrity_protection",
    "4_5.signature_with_detached_content",
    "4_6.protecting_specific_header_fields",
    "4_7.protecting_content_only",
    "4_8.multiple_signatures",
]
# The verification keys of RFC 7520 §3: EC P-521 public, RSA public, HMAC secret.
COOKBOOK_VERIFICATION_JWKS = [
    "3_1.ec_public_key",
    "3_3.rsa_public_key",
    "3_5.symmetric_key_mac_computation",
]
# Examples whose whole serialization our signer can express (protected headers only).
COOKBOOK_REPRODUCIBLE = [
    "4_1.rsa_v15_signature",
    "4_4.hmac-sha2_integrity_protection",
    "4_5.signature_with_detached_content",
]
# Examples holding at least one deterministic (RSASSA-PKCS1-v1_5 or HMAC) signature.
COOKBOOK_DETERMINISTIC = [name for name in COOKBOOK_JWS if not name.startswith(("4_2", "4_3"))]
COOKBOOK_RANDOMIZED = ["4_2.rsa-pss_signature", "4_3.ecdsa_signature"]
DETERMINISTIC_ALGS = frozenset({"HS256", "HS384", "HS512", "RS256", "RS384", "RS512"})


def _load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


@pytest.fixture(scope="module")
def cookbook(vectors_dir: Path) -> Path:
    return vectors_dir / "jose-cookbook"


@pytest.fixture(scope="module")
def cookbook_keys(cookbook: Path) -> jose.KeySet:
    keys = [
        jose.Key.from_jwk(_load(cookbook / "jwk" / f"{name}.json"))
        for name in COOKBOOK_VERIFICATION_JWKS
    ]
    return jose.KeySet(keys)


def _header(entry: dict[str, Any]) -> dict[str, Any]:
    """The JOSE header of one JSON-serialization signature (protected and unprotected)."""
    protected = entry.get("protected")
    header = dict(json.loads(b64.decode(protected))) if protected else {}
    header.update(entry.get("header", {}))
    return header


def _signatures(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["signatures"]) if "signatures" in document else [document]


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


# --------------------------------------------------------------------------- RFC 7515 Appendix A


@pytest.mark.parametrize("example", SIGNED_EXAMPLES)
def test_rfc7515_appendix_a_jws_verifies(example: dict[str, Any]) -> None:
    key = jose.Key.from_jwk(example["jwk"])
    verification_key = key if key.kty == "oct" else key.public()
    header_segment = example["compact"].split(".")[0]
    assert b64.decode(header_segment) == _utf8(example["protected"])

    payload = jose.jws.verify(example["compact"], verification_key, algorithms=[example["alg"]])

    assert payload == _utf8(example["payload"])


@pytest.mark.parametrize("example", JWT_EXAMPLES)
def test_rfc7515_appendix_a_jwt_examples_decode_to_their_claims(example: dict[str, Any]) -> None:
    key = jose.Key.from_jwk(example["jwk"])
    verification_key = key if key.kty == "oct" else key.public()

    claims = jose.jwt.decode(
        example["compact"], verification_key, algorithms=[example["alg"]], now=RFC7515_NOW
    )

    assert claims == json.loads(example["payload"])
    assert claims["http://example.com/is_root"] is True


@pytest.mark.parametrize("example", DETERMINISTIC_EXAMPLES)
def test_rfc7515_appendix_a_deterministic_signature_is_reproduced(example: dict[str, Any]) -> None:
    key = jose.Key.from_jwk(example["jwk"])
    header_segment, payload_segment, signature_segment = example["compact"].split(".")

    signature = key.signer(example["alg"])(f"{header_segment}.{payload_segment}".encode())

    assert b64.encode_str(signature) == signature_segment


@pytest.mark.parametrize("example", RANDOMIZED_EXAMPLES)
def test_rfc7515_appendix_a_private_key_signs_what_its_public_key_verifies(
    example: dict[str, Any],
) -> None:
    key = jose.Key.from_jwk(example["jwk"])
    payload = _utf8(example["payload"])

    compact = jose.jws.sign(payload, key, example["alg"])

    assert compact != example["compact"]
    assert jose.jws.verify(compact, key.public(), algorithms=[example["alg"]]) == payload


def _a5_keys() -> list[tuple[str, Any, list[str]]]:
    """Every key of Appendix A in every form the API accepts, with its own allow-list."""
    keys = [jose.Key.from_jwk(ex["jwk"]) for ex in RFC7515 if ex["jwk"] is not None]
    public = [key if key.kty == "oct" else key.public() for key in keys]
    forms: list[tuple[str, Any, list[str]]] = []
    for ex, key in zip((ex for ex in RFC7515 if ex["jwk"] is not None), public, strict=True):
        forms.append((f"{ex['alg']}-key", key, [ex["alg"]]))
        jwk = ex["jwk"] if key.kty == "oct" else key.to_jwk()
        forms.append((f"{ex['alg']}-jwk", jwk, [ex["alg"]]))
    own = [ex["alg"] for ex in RFC7515 if ex["jwk"] is not None]
    forms.append(("keyset", jose.KeySet(public), own))
    forms.append(("jwks", {"keys": [key.to_jwk() for key in public if key.kty != "oct"]}, own))
    return forms


def _a5_flattened() -> dict[str, str]:
    header, payload, signature = A5["compact"].split(".")
    return {"protected": header, "payload": payload, "signature": signature}


A5_ENTRY_POINTS: dict[str, Callable[[Any, list[str]], Any]] = {
    "jws.verify": lambda key, algs: jose.jws.verify(A5["compact"], key, algorithms=algs),
    "jws.verify_json-flattened": lambda key, algs: jose.jws.verify_json(
        _a5_flattened(), key, algorithms=algs
    ),
    "jws.verify_json-general": lambda key, algs: jose.jws.verify_json(
        {
            "payload": _a5_flattened()["payload"],
            "signatures": [{"protected": _a5_flattened()["protected"], "signature": ""}],
        },
        key,
        algorithms=algs,
    ),
    "jws.verify_json-unprotected-alg": lambda key, algs: jose.jws.verify_json(
        {"payload": _a5_flattened()["payload"], "header": {"alg": "none"}, "signature": ""},
        key,
        algorithms=algs,
    ),
    "jwt.decode": lambda key, algs: jose.jwt.decode(
        A5["compact"], key, algorithms=algs, now=RFC7515_NOW
    ),
    "jwt.Verifier": lambda key, algs: jose.Verifier(key, algorithms=algs).verify(
        A5["compact"], now=RFC7515_NOW
    ),
}
ALL_ALGORITHMS = sorted(algorithms.ALGORITHMS)
A5_CASES = [
    pytest.param(entry, key, algs, id=f"{entry}-{name}-{scope}")
    for entry in A5_ENTRY_POINTS
    for name, key, own in _a5_keys()
    for scope, algs in (("own-alg", own), ("every-alg", ALL_ALGORITHMS))
]


@pytest.mark.parametrize(("entry", "key", "algs"), A5_CASES)
def test_rfc7515_a5_unsecured_jws_is_refused(entry: str, key: Any, algs: list[str]) -> None:
    assert b64.decode(A5["compact"].split(".")[0]) == _utf8(A5["protected"])

    with pytest.raises(jose.InvalidToken):
        A5_ENTRY_POINTS[entry](key, algs)


@pytest.mark.parametrize("entry", list(A5_ENTRY_POINTS))
@pytest.mark.parametrize("algs", [["none"], ["HS256", "none"]], ids=["none", "HS256+none"])
def test_rfc7515_a5_none_in_the_allow_list_is_a_usage_error(entry: str, algs: list[str]) -> None:
    key = jose.Key.from_jwk(RFC7515[0]["jwk"])

    with pytest.raises(jose.UsageError):
        A5_ENTRY_POINTS[entry](key, algs)


# --------------------------------------------------------------------------- RFC 7520 §4


@pytest.mark.parametrize("name", COOKBOOK_JWS)
def test_rfc7520_jws_example_verifies_in_every_serialization(
    name: str, cookbook: Path, cookbook_keys: jose.KeySet
) -> None:
    vector = _load(cookbook / "jws" / f"{name}.json")
    payload = _utf8(vector["input"]["payload"])
    output = vector["output"]
    algs = vector["input"]["alg"]
    algs = algs if isinstance(algs, list) else [algs]
    verified: list[str] = []

    if "compact" in output:
        shown = output["compact"].split(".")[1]
        detached = payload if not shown else None
        assert (
            jose.jws.verify(
                output["compact"], cookbook_keys, algorithms=algs, detached_payload=detached
            )
            == payload
        )
        verified.append("compact")
    for form in ("json", "json_flat"):
        if form not in output:
            continue
        document = output[form]
        detached = payload if "payload" not in document else None
        assert (
            jose.jws.verify_json(
                document, cookbook_keys, algorithms=algs, detached_payload=detached
            )
            == payload
        )
        # Each signature verifies on its own, under its own algorithm only.
        for entry in _signatures(document):
            single: dict[str, Any] = {"signatures": [entry]}
            if "payload" in document:
                single["payload"] = document["payload"]
            alg = _header(entry)["alg"]
            assert (
                jose.jws.verify_json(
                    single, cookbook_keys, algorithms=[alg], detached_payload=detached
                )
                == payload
            )
        verified.append(form)

    assert verified, "the example has no serialization to verify"


@pytest.mark.parametrize("name", COOKBOOK_REPRODUCIBLE)
def test_rfc7520_deterministic_jws_is_reproduced_exactly(name: str, cookbook: Path) -> None:
    vector = _load(cookbook / "jws" / f"{name}.json")
    key = jose.Key.from_jwk(vector["input"]["key"])
    alg = vector["input"]["alg"]
    payload = _utf8(vector["input"]["payload"])
    output = vector["output"]
    detached = "payload" not in output["json"]

    assert jose.jws.sign(payload, key, alg, detached=detached) == output["compact"]
    assert (
        jose.jws.sign_json(payload, [key], flattened=True, detached=detached)
        == (output["json_flat"])
    )
    assert jose.jws.sign_json(payload, [key], detached=detached) == output["json"]


@pytest.mark.parametrize("name", COOKBOOK_DETERMINISTIC)
def test_rfc7520_deterministic_signature_is_reproduced_exactly(name: str, cookbook: Path) -> None:
    vector = _load(cookbook / "jws" / f"{name}.json")
    signings = vector["signing"] if isinstance(vector["signing"], list) else [vector["signing"]]
    jwks = vector["input"]["key"] if isinstance(vector["input"]["key"], list) else None
    reproduced = 0

    for index, signing in enumerate(signings):
        alg = {**signing.get("protected", {}), **signing.get("unprotected", {})}["alg"]
        if alg not in DETERMINISTIC_ALGS:
            continue
        key = jose.Key.from_jwk(jwks[index] if jwks is not None else vector["input"]["key"])
        signature = key.signer(alg)(signing["sig-input"].encode("ascii"))
        assert b64.encode_str(signature) == signing["sig"]
        reproduced += 1

    assert reproduced > 0


@pytest.mark.parametrize("name", COOKBOOK_RANDOMIZED)
def test_rfc7520_randomized_private_key_signs_what_the_public_key_verifies(
    name: str, cookbook: Path, cookbook_keys: jose.KeySet
) -> None:
    vector = _load(cookbook / "jws" / f"{name}.json")
    key = jose.Key.from_jwk(vector["input"]["key"])
    alg = vector["input"]["alg"]
    payload = _utf8(vector["input"]["payload"])

    compact = jose.jws.sign(payload, key, alg)

    assert compact != vector["output"]["compact"]
    assert jose.jws.verify(compact, cookbook_keys, algorithms=[alg]) == payload


# --------------------------------------------------------------------------- RFC 8037


@pytest.fixture(scope="module")
def ed25519_vector(cookbook: Path) -> dict[str, Any]:
    vector: dict[str, Any] = _load(cookbook / "curve25519" / "jws.json")
    return vector


def test_rfc8037_ed25519_signature_is_reproduced_exactly(ed25519_vector: dict[str, Any]) -> None:
    key = jose.Key.from_jwk(ed25519_vector["input"]["key"])
    signing = ed25519_vector["signing"]
    assert b64.decode(signing["protected_b64u"]) == b'{"alg":"EdDSA"}'

    signature = key.signer("EdDSA")(signing["sig-input"].encode("ascii"))

    assert b64.encode_str(signature) == signing["sig"]
    assert f"{signing['sig-input']}.{signing['sig']}" == ed25519_vector["output"]["compact"]


@pytest.mark.parametrize("form", ["compact", "json", "json_flat"])
def test_rfc8037_ed25519_jws_verifies(form: str, ed25519_vector: dict[str, Any]) -> None:
    public = jose.Key.from_jwk(ed25519_vector["input"]["key"]).public()
    document = ed25519_vector["output"][form]
    payload = _utf8(ed25519_vector["input"]["payload"])

    if form == "compact":
        verified = jose.jws.verify(document, public, algorithms=["EdDSA"])
    else:
        verified = jose.jws.verify_json(document, public, algorithms=["EdDSA"])

    assert verified == payload


def test_rfc8037_ed25519_thumbprint_matches_the_rfc(ed25519_vector: dict[str, Any]) -> None:
    public = jose.Key.from_jwk(RFC8037["public_jwk"])
    private = jose.Key.from_jwk(ed25519_vector["input"]["key"])

    assert public.thumbprint() == RFC8037["thumbprint_sha256"]
    assert private.thumbprint() == RFC8037["thumbprint_sha256"]
    # A key without a kid is named by its thumbprint.
    assert private.kid == RFC8037["thumbprint_sha256"]


# --------------------------------------------------------------------------- RFC 7797


@pytest.fixture(scope="module")
def unencoded_vector(cookbook: Path) -> dict[str, Any]:
    vector: dict[str, Any] = _load(cookbook / "rfc7797" / "hmac-sha2_b64_false.json")
    return vector


@pytest.fixture(scope="module")
def unencoded_without_crit_vector(cookbook: Path) -> dict[str, Any]:
    vector: dict[str, Any] = _load(cookbook / "rfc7797" / "4.2.hmac-sha2_b64_false.json")
    return vector


def _detached_compact(compact: str) -> str:
    header, _, signature = compact.split(".")
    return f"{header}..{signature}"


def _without_payload(document: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in document.items() if name != "payload"}


@pytest.mark.parametrize(
    "form",
    ["compact", "compact-detached", "json", "json-detached", "json_flat", "json_flat-detached"],
)
def test_rfc7797_unencoded_payload_with_crit_verifies(
    form: str, unencoded_vector: dict[str, Any]
) -> None:
    key = jose.Key.from_jwk(unencoded_vector["input"]["key"])
    payload = _utf8(unencoded_vector["input"]["payload"])
    output = unencoded_vector["output"]
    serialization, _, detached = form.partition("-")
    header = _header(_signatures(output["json"])[0])
    assert header == {"alg": "HS256", "b64": False, "crit": ["b64"]}

    if serialization == "compact":
        compact = output["compact"]
        assert compact.split(".")[1] == unencoded_vector["input"]["payload"]
        if detached:
            verified = jose.jws.verify(
                _detached_compact(compact), key, algorithms=["HS256"], detached_payload=payload
            )
        else:
            verified = jose.jws.verify(compact, key, algorithms=["HS256"])
    else:
        document = output[serialization]
        if detached:
            verified = jose.jws.verify_json(
                _without_payload(document), key, algorithms=["HS256"], detached_payload=payload
            )
        else:
            verified = jose.jws.verify_json(document, key, algorithms=["HS256"])

    assert verified == payload


def test_rfc7797_unencoded_payload_is_reproduced_exactly(unencoded_vector: dict[str, Any]) -> None:
    key = jose.Key.from_jwk(unencoded_vector["input"]["key"])
    payload = _utf8(unencoded_vector["input"]["payload"])
    output = unencoded_vector["output"]
    unencoded = {"b64": False}

    assert jose.jws.sign(payload, key, headers=unencoded) == output["compact"]
    assert jose.jws.sign(payload, key, headers=unencoded, detached=True) == (
        _detached_compact(output["compact"])
    )
    assert jose.jws.sign_json(payload, [(key, unencoded)], flattened=True) == output["json_flat"]
    assert jose.jws.sign_json(payload, [(key, unencoded)]) == output["json"]


@pytest.mark.parametrize("form", ["json", "json_flat", "compact-detached"])
def test_rfc7797_b64_false_without_crit_is_refused(
    form: str, unencoded_without_crit_vector: dict[str, Any]
) -> None:
    vector = unencoded_without_crit_vector
    key = jose.Key.from_jwk(vector["input"]["key"])
    payload = _utf8(vector["input"]["payload"])
    entry = _signatures(vector["output"]["json"])[0]
    assert _header(entry) == {"alg": "HS256", "b64": False}
    # The MAC itself is genuine: only the missing "crit" can be the reason to refuse.
    signing_input = entry["protected"].encode("ascii") + b"." + payload
    assert key.verifier("HS256")(signing_input, b64.decode(entry["signature"]))

    verify = (
        functools.partial(
            jose.jws.verify,
            f"{entry['protected']}..{entry['signature']}",
            detached_payload=payload,
        )
        if form == "compact-detached"
        else functools.partial(jose.jws.verify_json, vector["output"][form])
    )

    with pytest.raises(jose.UnsupportedHeader):
        verify(key, algorithms=["HS256"])


def _b64_jwts(vector: dict[str, Any]) -> dict[str, str]:
    key = jose.Key.from_jwk(vector["input"]["key"])
    claims = b'{"sub":"ada","exp":4102444800}'
    return {
        "rfc7797-vector": vector["output"]["compact"],
        "claims-b64-false": jose.jws.sign(claims, key, headers={"b64": False}),
        "claims-b64-true-crit": jose.jws.sign(claims, key, headers={"b64": True, "crit": ["b64"]}),
    }


@pytest.mark.parametrize(
    "token_name", ["rfc7797-vector", "claims-b64-false", "claims-b64-true-crit"]
)
@pytest.mark.parametrize("entry", ["jwt.decode", "jwt.Verifier"])
def test_rfc7797_jwt_carrying_b64_is_refused(
    token_name: str, entry: str, unencoded_vector: dict[str, Any]
) -> None:
    key = jose.Key.from_jwk(unencoded_vector["input"]["key"])
    token = _b64_jwts(unencoded_vector)[token_name]
    header = json.loads(b64.decode(token.split(".")[0]))
    assert "b64" in header
    assert header["crit"] == ["b64"]

    decode = (
        jose.Verifier(key, algorithms=["HS256"], require=()).verify
        if entry == "jwt.Verifier"
        else functools.partial(jose.jwt.decode, key=key, algorithms=["HS256"], require=())
    )

    with pytest.raises(jose.UnsupportedHeader):
        decode(token)
