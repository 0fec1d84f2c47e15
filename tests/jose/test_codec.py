"""tessera.jose.b64 and tessera.jose.json: the strict codecs every token goes through."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera import jose


@given(st.binary(max_size=512))
def test_base64url_round_trips_without_padding(data: bytes) -> None:
    encoded = jose.b64.encode(data)
    assert b"=" not in encoded and b"+" not in encoded and b"/" not in encoded
    assert encoded == base64.urlsafe_b64encode(data).rstrip(b"=")
    assert jose.b64.decode(encoded) == data
    assert jose.b64.decode(encoded.decode()) == data


@given(st.binary(min_size=1, max_size=64))
def test_base64url_has_exactly_one_encoding(data: bytes) -> None:
    encoded = jose.b64.encode(data)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for replacement in alphabet:
        variant = encoded[:-1] + bytes([replacement])
        if variant == encoded:
            continue
        try:
            decoded = jose.b64.decode(variant)
        except jose.MalformedToken:
            continue
        assert decoded != data


@pytest.mark.parametrize("text", ["a", "ab=", "a b", "ab\n", "é", "ab+c", "ab/c", "Zm9v=="])
def test_base64url_refuses_anything_non_canonical(text: str) -> None:
    with pytest.raises(jose.MalformedToken):
        jose.b64.decode(text)


def test_base64url_unsigned_integers() -> None:
    assert jose.b64.encode_uint(65537) == "AQAB"
    assert jose.b64.decode_uint("AQAB") == 65537
    assert jose.b64.encode_uint(1, 32) == "A" * 42 + "E"


def test_json_is_strict_and_bounded() -> None:
    assert jose.json.loads(b'{"a":[1,{"b":null}]}') == {"a": [1, {"b": None}]}
    for bad in (b"{'a':1}", b'{"a":1,}', b"\xef\xbb\xbf{}", b'{"a":"\\ud800"}', b"NaN", b"{"):
        with pytest.raises(jose.MalformedToken):
            jose.json.loads(bad)
    with pytest.raises(jose.MalformedToken):
        jose.json.loads(b" " * 10 + b"{}", max_bytes=8)
    deep = b'{"a":' * 33 + b"1" + b"}" * 33
    with pytest.raises(jose.MalformedToken):
        jose.json.loads(deep)
    assert jose.json.loads(b'{"a":' * 32 + b"1" + b"}" * 32)
    wide = b"[" + b",".join([b"{}"] * 100) + b"]"
    assert len(jose.json.loads(wide)) == 100
    with pytest.raises(jose.MalformedToken):
        jose.json.loads(b"[" * 2000 + b"]" * 2000)
