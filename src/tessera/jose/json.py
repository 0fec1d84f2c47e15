"""Strict JSON for JOSE headers and claims: one parse function and one serialise function.

Parsing is orjson's (RFC 8259 strict: UTF-8 only, no ``NaN``/``Infinity``, no BOM, numbers that
overflow a double are refused). A member name that appears twice keeps its lexically last value,
which RFC 7515 §5.2 allows; the first is never used. Input size is bounded before parsing and
nesting depth during it.

>>> from tessera.jose import json
>>> json.loads(b'{"a": [1, 2]}')
{'a': [1, 2]}
>>> json.dumps({"a": 1})
b'{"a":1}'
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import MalformedToken

MAX_DEPTH = 32
MAX_BYTES = 256 * 1024


def loads(data: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text, refusing anything that is not strict, bounded JSON.

    >>> loads(b'{"n": NaN}')
    Traceback (most recent call last):
    ...
    tessera.jose.errors.MalformedToken: invalid JSON
    """
    if len(data) > max_bytes:
        raise MalformedToken("JSON text too large")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedToken("invalid JSON") from None
    # Depth cannot exceed the number of brackets; only count exactly when that bound is too high.
    if data.count(b"{") + data.count(b"[") > max_depth and _depth(value) > max_depth:
        raise MalformedToken("JSON nested too deeply")
    return value


def loads_object(data: bytes, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Parse a JSON object (a JOSE header or a claims set); anything else is refused.

    >>> loads_object(b"[1]")
    Traceback (most recent call last):
    ...
    tessera.jose.errors.MalformedToken: not a JSON object
    """
    value = loads(data, max_bytes=max_bytes)
    if type(value) is not dict:
        raise MalformedToken("not a JSON object")
    return value


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON.

    >>> dumps({"sub": "ada", "n": [1]})
    b'{"sub":"ada","n":[1]}'
    """
    return orjson.dumps(value)


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest
