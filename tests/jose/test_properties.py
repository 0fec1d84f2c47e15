"""Properties that hold for every input: decode only ever refuses with jose.InvalidToken."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera import jose

from .forge import forge, segment

NOW = 1_700_000_000
KEYS = {alg: jose.Key.generate(alg) for alg in ("HS256", "ES256", "EdDSA")}
VERIFIERS = {
    alg: jose.Verifier(key if key.kty == "oct" else key.public(), algorithms=[alg], require=())
    for alg, key in KEYS.items()
}

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
claims_sets = st.dictionaries(
    st.text(max_size=12).filter(
        lambda name: name not in {"exp", "nbf", "iat", "iss", "aud", "sub", "jti"}
    ),
    json_values,
    max_size=8,
)
token_like = st.builds(
    lambda parts: ".".join(parts),
    st.lists(
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ .",
            max_size=40,
        ),
        max_size=5,
    ),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=300) | token_like)
def test_any_input_is_refused_only_with_invalid_token(value: Any) -> None:
    for verifier in VERIFIERS.values():
        with pytest.raises(jose.InvalidToken):
            verifier.verify(value, now=NOW)


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5), claims_sets)
def test_any_header_and_payload_under_a_bad_signature_is_refused(
    header: dict[str, Any], payload: dict[str, Any]
) -> None:
    token = forge(header, payload, signature=b"\x01" * 64)
    for verifier in VERIFIERS.values():
        with pytest.raises(jose.InvalidToken):
            verifier.verify(token, now=NOW)
    with pytest.raises(jose.InvalidToken):
        jose.jws.verify(token, KEYS["ES256"], algorithms=["ES256"])


@settings(max_examples=200)
@given(claims_sets, st.sampled_from(sorted(KEYS)))
def test_sign_then_verify_round_trips_any_claims(claims: dict[str, Any], alg: str) -> None:
    token = jose.jwt.encode(claims, KEYS[alg])
    assert VERIFIERS[alg].verify(token, now=NOW) == claims


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(KEYS)), st.integers(min_value=0), st.integers(min_value=1, max_value=255)
)
def test_any_single_byte_change_is_refused(alg: str, position: int, flip: int) -> None:
    token = jose.jwt.encode({"sub": "ada", "roles": ["admin"]}, KEYS[alg])
    index = position % len(token)
    changed = token[:index] + chr(ord(token[index]) ^ flip) + token[index + 1 :]
    try:
        claims = VERIFIERS[alg].verify(changed, now=NOW)
    except jose.InvalidToken:
        return
    # Only a change that leaves the signed bytes identical could pass, and none can: fail loudly.
    raise AssertionError(f"changed token verified: {claims!r}")


@settings(max_examples=100)
@given(st.binary(min_size=1, max_size=64))
def test_random_signatures_never_verify(signature: bytes) -> None:
    for alg in KEYS:
        token = forge({"alg": alg}, {"sub": "ada"}, signature=signature)
        with pytest.raises(jose.InvalidToken):
            VERIFIERS[alg].verify(token, now=NOW)
    assert segment(signature)
