"""The registered claims of RFC 7519 §4.1 and the one type each may have when present.

A registered claim that is present is checked for its type whatever the verifier was told to
check, and ``null`` is never "absent" (RFC 8725 §3.10): ``exp``, ``nbf`` and ``iat`` are
NumericDates — a finite JSON number, not a bool, between 1970 and the end of year 9999 —;
``iss``, ``sub`` and ``jti`` are strings; ``aud`` is a string or a non-empty array of strings.
The same rule holds when a token is made, so Tessera never mints what it would refuse.

>>> check_registered({"sub": "ada", "exp": 2_000_000_000, "aud": ["orders"]})
>>> check_registered({"sub": "ada", "exp": None})
Traceback (most recent call last):
...
tessera.jose.errors.ClaimError: exp must be a NumericDate
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from .errors import ClaimError

NUMERIC_DATES = ("exp", "nbf", "iat")
STRINGS = ("iss", "sub", "jti")
# 9999-12-31T23:59:59Z: past it a date means "never" in disguise (RFC 8725 §3.10).
MAX_NUMERIC_DATE = 253_402_300_799

_ABSENT: Any = object()


def is_numeric_date(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a NumericDate: an int or float (never a bool) in [0, year 9999].

    ``nan`` and ``inf`` are outside every range, so they are refused by the same comparison.

    >>> is_numeric_date(1_700_000_000), is_numeric_date(1.5e9), is_numeric_date(True)
    (True, True, False)
    >>> is_numeric_date(1e308), is_numeric_date(float("nan")), is_numeric_date("1700000000")
    (False, False, False)
    """
    kind = type(value)
    return (kind is int or kind is float) and 0 <= value <= MAX_NUMERIC_DATE  # type: ignore[operator]


def is_audience(value: object) -> bool:
    """Whether ``value`` is an ``aud``: a string, or a non-empty list of strings.

    >>> is_audience("orders"), is_audience(["a", "b"]), is_audience([]), is_audience(["a", None])
    (True, True, False, False)
    """
    if type(value) is str:
        return True
    return type(value) is list and bool(value) and all(type(item) is str for item in value)


def check_registered(claims: Mapping[str, Any]) -> None:
    """Refuse a claims set in which a registered claim that is present has the wrong type.

    The error is a ``ClaimError`` (code ``invalid_claim``) naming the claim, never its value.

    >>> try:
    ...     check_registered({"aud": []})
    ... except ClaimError as error:
    ...     print(error.code, error.claim)
    invalid_claim aud
    """
    for name in NUMERIC_DATES:
        value = claims.get(name, _ABSENT)
        if value is not _ABSENT and not is_numeric_date(value):
            raise ClaimError(f"{name} must be a NumericDate", name)
    for name in STRINGS:
        value = claims.get(name, _ABSENT)
        if value is not _ABSENT and type(value) is not str:
            raise ClaimError(f"{name} must be a string", name)
    value = claims.get("aud", _ABSENT)
    if value is not _ABSENT and not is_audience(value):
        raise ClaimError("aud must be a string or a non-empty list of strings", "aud")
