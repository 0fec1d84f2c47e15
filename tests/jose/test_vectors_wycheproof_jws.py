"""Wycheproof's JOSE-level JWS vectors (``json_web_signature_test.json``, 401 cases), end to end.

Each group's key is read as a JWK (its public half when it has one); the allowed algorithms are
the key's ``alg`` when it names one, else every algorithm the key can do — the token never picks.
Every ``invalid`` case must be refused with a typed ``JoseError`` (at key import or at
verification); every ``valid`` case must verify to its payload, except the ones listed in
``REFUSED_ON_PURPOSE``, each with the rule of Tessera's that refuses it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tessera import jose

WYCHEPROOF = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "wycheproof"
FILE = WYCHEPROOF / "json_web_signature_test.json"

# tcId → (the rule that refuses it, the error code Tessera gives)
_ALG_BINDS = "a JWK's alg binds the key: PS256 key, PS384 token (RFC 7517 §4.4)"
_NOT_JWA = "'ES521' is no JWA algorithm (ES512 is): the JWK is refused at import"
_STRICT_B64 = "strict base64url: a character outside the alphabet is never skipped"
REFUSED_ON_PURPOSE: dict[int, tuple[str, str]] = {
    346: (_ALG_BINDS, "algorithm_not_allowed"),
    350: (_ALG_BINDS, "algorithm_not_allowed"),
    347: (_NOT_JWA, "invalid_key"),
    351: (_NOT_JWA, "invalid_key"),
    372: (_STRICT_B64, "malformed"),
    # The header is intact and the payload segment is part of the signing input, so the changed
    # segment fails the signature, which is checked before the payload is decoded.
    373: (_STRICT_B64, "invalid_signature"),
}
# The file's "invalidBase64Padding" cases carry exactly the bytes of the valid tcId 357: the "="
# their names speak of was lost upstream. They are checked as identical (so an upstream fix is
# noticed) and the padded forms they describe are checked below.
LOST_PADDING = {367: 357, 370: 357}


def _document() -> dict[str, Any]:
    if not FILE.is_file():
        raise FileNotFoundError(f"Wycheproof JWS vectors not found at {FILE}")
    document: dict[str, Any] = json.loads(FILE.read_text("utf-8"))
    return document


def _cases() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(group, test) for group in _document()["testGroups"] for test in group["tests"]]


CASES = _cases()
BY_ID = {test["tcId"]: test for _, test in CASES}


def _verify(group: dict[str, Any], serialized: str | dict[str, Any]) -> bytes:
    jwk = group.get("public") or group["private"]
    key = jose.Key.from_jwk(jwk)
    algorithms = [jwk["alg"]] if "alg" in jwk else sorted(key.algorithms())
    if isinstance(serialized, dict):
        return jose.jws.verify_json(serialized, key, algorithms=algorithms)
    return jose.jws.verify(serialized, key, algorithms=algorithms)


def test_the_file_is_the_one_expected() -> None:
    counts = Counter(test["result"] for _, test in CASES)
    assert len(CASES) == _document()["numberOfTests"] == 401
    assert counts == {"invalid": 355, "valid": 46}


@pytest.mark.parametrize(
    ("group", "test"), CASES, ids=[f"tc{test['tcId']}-{test['comment']}" for _, test in CASES]
)
def test_wycheproof_jws_vector(group: dict[str, Any], test: dict[str, Any]) -> None:
    tc_id = test["tcId"]
    if tc_id in LOST_PADDING:
        assert test["jws"] == BY_ID[LOST_PADDING[tc_id]]["jws"]
        return
    if test["result"] == "valid" and tc_id not in REFUSED_ON_PURPOSE:
        payload = _verify(group, test["jws"])
        assert isinstance(payload, bytes)
        return
    with pytest.raises(jose.JoseError) as refused:
        _verify(group, test["jws"])
    if tc_id in REFUSED_ON_PURPOSE:
        assert refused.value.code == REFUSED_ON_PURPOSE[tc_id][1]


def test_every_refused_valid_case_is_listed_with_its_rule() -> None:
    refused = set()
    for group, test in CASES:
        if test["result"] != "valid" or test["tcId"] in LOST_PADDING:
            continue
        try:
            _verify(group, test["jws"])
        except jose.JoseError:
            refused.add(test["tcId"])
    assert refused == set(REFUSED_ON_PURPOSE)


def test_the_padded_forms_the_lost_padding_cases_describe_are_refused() -> None:
    group = next(group for group, test in CASES if test["tcId"] == 357)
    header, payload, signature = BY_ID[357]["jws"].split(".")
    assert _verify(group, BY_ID[357]["jws"]) == b"Test"
    with pytest.raises(jose.MalformedToken):
        _verify(group, f"{header}.{payload}.{signature}=")
    # A padded payload changes the signing input: the signature, checked first, no longer holds.
    with pytest.raises(jose.InvalidSignature):
        _verify(group, f"{header}.{payload}==.{signature}")


def test_rfc7520_figure27_verifies_once_its_key_is_labelled_es512() -> None:
    """The ES521 cases are refused for their key's label only: with the JWA name the same
    signature verifies, so ES512 itself is not what fails."""
    for tc_id in (347, 351):
        group = next(group for group, test in CASES if test["tcId"] == tc_id)
        jwk = {**group["public"], "alg": "ES512"}
        key = jose.Key.from_jwk(jwk)
        payload = jose.jws.verify(BY_ID[tc_id]["jws"], key, algorithms=["ES512"])
        assert payload.startswith(b"It\xe2\x80\x99s a dangerous business, Frodo")
