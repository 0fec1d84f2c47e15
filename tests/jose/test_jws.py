"""tessera.jose.jws: compact and JSON serializations, detached and unencoded payloads."""

from __future__ import annotations

from typing import Any

import pytest

from tessera import jose


@pytest.fixture(scope="module")
def es256() -> jose.Key:
    return jose.Key.generate("ES256", kid="e1")


@pytest.fixture(scope="module")
def ed() -> jose.Key:
    return jose.Key.generate("EdDSA", kid="d1")


def test_compact_round_trip_of_arbitrary_bytes(es256: jose.Key) -> None:
    payload = bytes(range(256))
    compact = jose.jws.sign(payload, es256)
    assert jose.jws.verify(compact, es256.public(), algorithms=["ES256"]) == payload
    assert jose.jws.verify(compact.encode(), es256.public(), algorithms=["ES256"]) == payload


def test_detached_payload(es256: jose.Key) -> None:
    compact = jose.jws.sign(b"big document", es256, detached=True)
    _, middle, _ = compact.split(".")
    assert middle == ""
    verified = jose.jws.verify(
        compact, es256.public(), algorithms=["ES256"], detached_payload=b"big document"
    )
    assert verified == b"big document"
    with pytest.raises(jose.InvalidSignature):
        jose.jws.verify(
            compact, es256.public(), algorithms=["ES256"], detached_payload=b"other document"
        )
    attached = jose.jws.sign(b"big document", es256)
    with pytest.raises(jose.MalformedToken):
        jose.jws.verify(attached, es256, algorithms=["ES256"], detached_payload=b"big document")


def test_unencoded_payload_rfc7797(es256: jose.Key) -> None:
    compact = jose.jws.sign(b"$.02", es256, headers={"b64": False}, detached=True)
    header = jose.jws.parse_header(compact.split(".")[0].encode())
    assert header["b64"] is False and header["crit"] == ["b64"]
    assert (
        jose.jws.verify(compact, es256, algorithms=["ES256"], detached_payload=b"$.02") == b"$.02"
    )
    inline = jose.jws.sign(b"no-dots-here", es256, headers={"b64": False})
    assert inline.split(".")[1] == "no-dots-here"
    assert jose.jws.verify(inline, es256, algorithms=["ES256"]) == b"no-dots-here"
    with pytest.raises(jose.UsageError):
        jose.jws.sign(b"$.02", es256, headers={"b64": False})


def test_b64_false_without_crit_is_refused(es256: jose.Key) -> None:
    from .forge import segment

    header = segment({"alg": "ES256", "b64": False})
    signing_input = f"{header}.payload".encode()
    signature = segment(es256.signer("ES256")(signing_input))
    with pytest.raises(jose.UnsupportedHeader):
        jose.jws.verify(f"{header}.payload.{signature}", es256, algorithms=["ES256"])


def test_general_json_verifies_when_one_allowed_key_verifies(es256: jose.Key, ed: jose.Key) -> None:
    document = jose.jws.sign_json(b"shared", [es256, (ed, {"typ": "example"})])
    assert len(document["signatures"]) == 2
    assert jose.jws.verify_json(document, ed.public(), algorithms=["EdDSA"]) == b"shared"
    assert jose.jws.verify_json(document, es256.public(), algorithms=["ES256"]) == b"shared"
    as_text = jose.json.dumps(document)
    both = jose.KeySet([es256.public(), ed.public()])
    assert jose.jws.verify_json(as_text, both, algorithms=["ES256", "EdDSA"]) == b"shared"
    stranger = jose.Key.generate("ES256", kid="e1")
    with pytest.raises(jose.InvalidSignature):
        jose.jws.verify_json(document, stranger.public(), algorithms=["ES256"])
    with pytest.raises(jose.AlgorithmNotAllowed):
        jose.jws.verify_json(document, es256.public(), algorithms=["RS256"])


def test_flattened_json_and_detached(es256: jose.Key) -> None:
    document = jose.jws.sign_json(b"flat", [es256], flattened=True, detached=True)
    assert "payload" not in document and "signatures" not in document
    verified = jose.jws.verify_json(
        document, es256.public(), algorithms=["ES256"], detached_payload=b"flat"
    )
    assert verified == b"flat"


@pytest.mark.parametrize(
    "document",
    [
        {"payload": "eA", "signatures": []},
        {"payload": "eA", "signatures": "x"},
        {"payload": "eA"},
        {"payload": 5, "protected": "eyJhbGciOiJFUzI1NiJ9", "signature": "AA"},
        {"payload": "eA", "protected": 5, "signature": "AA"},
        {
            "payload": "eA",
            "protected": "eyJhbGciOiJFUzI1NiJ9",
            "header": {"alg": "ES256"},
            "signature": "AA",
        },
        {
            "payload": "eA",
            "protected": "eyJhbGciOiJFUzI1NiJ9",
            "header": {"crit": ["b64"]},
            "signature": "AA",
        },
        [1, 2],
    ],
    ids=[
        "empty",
        "not-list",
        "no-signature",
        "payload-int",
        "protected-int",
        "overlap",
        "crit-unprotected",
        "array",
    ],
)
def test_malformed_json_serialization_is_refused(document: Any, es256: jose.Key) -> None:
    with pytest.raises(jose.InvalidToken):
        jose.jws.verify_json(document, es256, algorithms=["ES256"])


def test_too_many_signatures_are_refused(es256: jose.Key) -> None:
    document = jose.jws.sign_json(b"x", [es256] * 17)
    with pytest.raises(jose.MalformedToken):
        jose.jws.verify_json(document, es256, algorithms=["ES256"])


def test_sign_refuses_conflicting_algorithms(es256: jose.Key) -> None:
    with pytest.raises(jose.UsageError):
        jose.jws.sign(b"x", es256, alg="ES256", headers={"alg": "ES384"})
    with pytest.raises(jose.AlgorithmNotAllowed):
        jose.jws.sign(b"x", es256, alg="RS256")


def test_a_header_given_as_none_is_left_out(es256: jose.Key) -> None:
    compact = jose.jws.sign(b"x", es256, headers={"kid": None})
    assert jose.jws.parse_header(compact.split(".")[0].encode()) == {"alg": "ES256"}
    token = jose.jwt.encode({"sub": "ada"}, es256, headers={"kid": None, "typ": None})
    assert jose.jwt.decode_unverified(token)[0] == {"alg": "ES256"}
