"""A registered claim that is present has its registered type, and ``null`` is never "absent".

RFC 7519 §4.1 and RFC 8725 §3.10: ``exp``/``nbf``/``iat`` are NumericDates, ``iss``/``sub``/``jti``
strings, ``aud`` a string or a non-empty array of strings. Every ill-typed value is refused by
``decode``, by a ``Verifier`` with and without its cache, and ``encode`` refuses to mint it.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera import jose
from tessera.jose.claims import MAX_NUMERIC_DATE

from .forge import forge_claims

NOW = 1_700_000_000
VALID: dict[str, Any] = {
    "iss": "https://id.example",
    "sub": "ada",
    "aud": "orders",
    "exp": NOW + 600,
    "nbf": NOW - 10,
    "iat": NOW - 10,
    "jti": "t-1",
}
KEY = jose.Key.generate("HS256")

# Every JSON type that is wrong somewhere; each claim takes the ones that are wrong for it.
NULL, TRUE, FALSE = None, True, False
WRONG_FOR_DATE: list[Any] = [NULL, TRUE, FALSE, "1700000600", [NOW], {"t": NOW}, [], {}]
WRONG_FOR_STRING: list[Any] = [NULL, TRUE, FALSE, 42, 4.2, ["ada"], {"v": "ada"}, [], {}]
WRONG_FOR_AUD: list[Any] = [NULL, TRUE, FALSE, 42, 4.2, {"v": "orders"}, [], ["orders", None]]
WRONG_FOR_AUD += [["orders", 1], [["orders"]], [{}], {}]
OUT_OF_RANGE: list[Any] = [1e308, 10**30, MAX_NUMERIC_DATE + 1, -1, -1e9, 2**63 - 1]

CASES = (
    [(name, value) for name in ("exp", "nbf", "iat") for value in WRONG_FOR_DATE + OUT_OF_RANGE]
    + [(name, value) for name in ("iss", "sub", "jti") for value in WRONG_FOR_STRING]
    + [("aud", value) for value in WRONG_FOR_AUD]
)


def _case_id(case: tuple[str, Any]) -> str:
    return f"{case[0]}={case[1]!r}"


def _verifiers() -> dict[str, jose.Verifier]:
    """Lenient verifiers check nothing they were not told to, so only the type rule can refuse;
    strict ones check and require everything."""
    lenient: dict[str, Any] = {"require": (), "audience": jose.ANY_AUDIENCE}
    strict: dict[str, Any] = {
        "issuer": "https://id.example",
        "audience": "orders",
        "require": ("exp", "iat", "nbf", "sub", "jti"),
    }
    return {
        f"{label}{suffix}": jose.Verifier(KEY, algorithms=["HS256"], cache=cache, **policy)
        for label, policy in (("lenient", lenient), ("strict", strict))
        for suffix, cache in (("", 0), ("-cached", 64))
    }


VERIFIERS = _verifiers()


def test_the_well_typed_claims_pass_every_verifier() -> None:
    token = jose.jwt.encode(VALID, KEY)
    for verifier in VERIFIERS.values():
        assert verifier.verify(token, now=NOW) == VALID


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_an_ill_typed_registered_claim_is_refused_everywhere(case: tuple[str, Any]) -> None:
    name, value = case
    token = forge_claims({**VALID, name: value}, KEY)
    with pytest.raises(jose.ClaimError) as refused:
        jose.jwt.decode(token, KEY, algorithms=["HS256"], audience="orders", now=NOW)
    assert (refused.value.code, refused.value.claim) == ("invalid_claim", name)
    for label, verifier in VERIFIERS.items():
        before = verifier.cache_info()[0]
        with pytest.raises(jose.ClaimError) as refused:
            verifier.verify(token, now=NOW)
        assert (refused.value.code, refused.value.claim) == ("invalid_claim", name), label
        assert verifier.cache_info()[0] == before, f"{label} cached a refused token"
        # A refusal is never remembered as a success: asking again refuses again.
        with pytest.raises(jose.ClaimError):
            verifier.verify(token, now=NOW)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_encode_never_mints_an_ill_typed_registered_claim(case: tuple[str, Any]) -> None:
    name, value = case
    with pytest.raises(jose.UsageError) as refused:
        jose.jwt.encode({**VALID, name: value}, KEY)
    assert name in str(refused.value)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_the_message_names_the_claim_never_the_value_or_the_token(case: tuple[str, Any]) -> None:
    name, value = case
    token = forge_claims({**VALID, name: value}, KEY)
    with pytest.raises(jose.ClaimError) as refused:
        VERIFIERS["lenient"].verify(token, now=NOW)
    message = str(refused.value)
    assert name in message
    assert token not in message and token.split(".")[1] not in message
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        assert str(value) not in message


@pytest.mark.parametrize("name", ["exp", "nbf", "iat", "iss", "sub", "jti", "aud", "tenant"])
def test_null_never_satisfies_require(name: str) -> None:
    token = forge_claims({**VALID, name: None}, KEY)
    with pytest.raises(jose.ClaimError) as refused:
        jose.Verifier(
            KEY, algorithms=["HS256"], require=(name,), audience=jose.ANY_AUDIENCE
        ).verify(token, now=NOW)
    assert refused.value.claim == name
    absent = forge_claims({k: v for k, v in VALID.items() if k != name}, KEY)
    with pytest.raises(jose.MissingClaim):
        jose.Verifier(
            KEY, algorithms=["HS256"], require=(name,), audience=jose.ANY_AUDIENCE
        ).verify(absent, now=NOW)


def test_exp_null_is_refused_by_the_default_policy() -> None:
    """The issue as a user met it: `"exp": null` used to mean a token that never expires."""
    key = jose.Key.generate("ES256")
    token = forge_claims({"sub": "ada", "exp": None}, key)
    with pytest.raises(jose.ClaimError) as refused:
        jose.jwt.decode(token, key.public(), algorithms=["ES256"])
    assert (refused.value.code, refused.value.claim) == ("invalid_claim", "exp")
    with pytest.raises(jose.UsageError):
        jose.jwt.encode({"sub": "ada", "exp": None}, key)


@pytest.mark.parametrize("value", [NOW + 600.5, float(NOW + 600), 0, MAX_NUMERIC_DATE])
def test_numeric_dates_are_ints_or_floats_within_range(value: float) -> None:
    token = jose.jwt.encode({"sub": "ada", "exp": value}, KEY)
    verifier = jose.Verifier(KEY, algorithms=["HS256"])
    if value > NOW:
        assert verifier.verify(token, now=NOW)["exp"] == value
    else:
        with pytest.raises(jose.ExpiredToken):
            verifier.verify(token, now=NOW)


def test_a_number_that_overflows_a_double_is_malformed_json() -> None:
    token = forge_claims(b'{"sub":"ada","exp":1e400}', KEY)
    with pytest.raises(jose.MalformedToken):
        jose.jwt.decode(token, KEY, algorithms=["HS256"], now=NOW)


def test_a_duplicate_member_cannot_hide_an_ill_typed_exp() -> None:
    """The hidden-member trick: JSON with `exp` twice. Tessera's parser keeps the last member
    (RFC 7515 §5.2 allows that, and orjson does it) and never looks at the first, so what is
    checked is exactly what the caller gets back — and a null last `exp` is refused."""
    hidden_null = forge_claims(b'{"sub":"ada","exp":1700000600,"exp":null}', KEY)
    with pytest.raises(jose.ClaimError) as refused:
        jose.jwt.decode(hidden_null, KEY, algorithms=["HS256"], now=NOW)
    assert refused.value.claim == "exp"
    hidden_string = forge_claims(b'{"sub":"ada","exp":1700000600,"exp":"never"}', KEY)
    with pytest.raises(jose.ClaimError):
        jose.jwt.decode(hidden_string, KEY, algorithms=["HS256"], now=NOW)
    # The other order: the null comes first and is never used; the claims returned are the
    # ones that were checked, so no caller can read the other member.
    last_wins = forge_claims(b'{"sub":"ada","exp":null,"exp":1700000600}', KEY)
    claims = jose.jwt.decode(last_wins, KEY, algorithms=["HS256"], now=NOW)
    assert claims == {"sub": "ada", "exp": 1700000600}


def test_datetimes_still_encode_as_numeric_dates() -> None:
    from datetime import UTC, datetime

    moment = datetime(2030, 1, 1, tzinfo=UTC)
    token = jose.jwt.encode({"sub": "ada", "exp": moment}, KEY)
    assert jose.jwt.decode(token, KEY, algorithms=["HS256"], now=NOW)["exp"] == int(
        moment.timestamp()
    )


# ---------------------------------------------------------------- property: any payload at all

REGISTERED = ("exp", "nbf", "iat", "iss", "sub", "jti", "aud")
_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_json = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children)
    ),
    max_leaves=8,
)
_near_now = st.integers(min_value=NOW - 1000, max_value=NOW + 1000)
_payload = st.dictionaries(
    st.sampled_from(REGISTERED) | st.text(max_size=6),
    _json | _near_now | st.sampled_from(["orders", "ada"]) | st.lists(st.text(max_size=3)),
    max_size=8,
)


def _well_typed(name: str, value: Any) -> bool:
    """An oracle written apart from the library's own check."""
    if name in ("exp", "nbf", "iat"):
        return type(value) in (int, float) and math.isfinite(value) and 0 <= value <= 253402300799
    if name in ("iss", "sub", "jti"):
        return type(value) is str
    if name == "aud":
        return type(value) is str or (
            type(value) is list and len(value) > 0 and all(type(v) is str for v in value)
        )
    return True


@settings(max_examples=400, deadline=None)
@given(_payload)
def test_any_payload_is_returned_exactly_or_refused_with_a_typed_error(
    payload: dict[str, Any],
) -> None:
    token = forge_claims(payload, KEY)
    for verifier in (VERIFIERS["lenient"], VERIFIERS["lenient-cached"]):
        try:
            claims = verifier.verify(token, now=NOW)
        except jose.InvalidToken:
            continue  # a typed refusal; any other exception fails the test
        assert claims == payload
        for name in REGISTERED:
            if name in claims:
                assert _well_typed(name, claims[name]), name
    try:
        claims = jose.jwt.decode(token, KEY, algorithms=["HS256"], now=NOW)
    except jose.InvalidToken:
        return
    assert claims == payload and _well_typed("exp", claims["exp"])
