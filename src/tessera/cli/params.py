"""Command-line text turned into values: algorithm names, durations, claims.

>>> parse_duration("1h30m"), check_algorithm("ES256")
(5400, 'ES256')
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tessera import jose
from tessera.jose.algorithms import ALGORITHMS

from .errors import InputError
from .files import read_bytes

_DURATION = re.compile(r"(?:\d+[smhdw])+")
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

ALGORITHM_HELP = ", ".join(ALGORITHMS)


def check_algorithm(name: str) -> str:
    """A JWS algorithm name that Tessera knows (``none`` is not one of them).

    >>> check_algorithm("EdDSA")
    'EdDSA'
    """
    if name not in ALGORITHMS:
        raise InputError(f"unknown algorithm {name!r}; choose from {ALGORITHM_HELP}")
    return name


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30s``, ``15m``, ``2h``, ``7d``, ``1w`` or ``1h30m``.

    >>> parse_duration("15m")
    900
    """
    if not _DURATION.fullmatch(text):
        raise InputError(f"invalid duration {text!r}; expected e.g. 30s, 15m, 2h or 7d")
    seconds = sum(int(count) * _UNIT_SECONDS[unit] for count, unit in _DURATION_PART.findall(text))
    if seconds == 0:
        raise InputError(f"invalid duration {text!r}; it must be longer than zero")
    return seconds


def parse_claims(text: str) -> dict[str, Any]:
    """A claims set from JSON text, or from a file when the text is ``@path``.

    >>> parse_claims('{"sub": "ada"}')
    {'sub': 'ada'}
    """
    if text.startswith("@"):
        data = read_bytes(Path(text[1:]), "claims file")
    else:
        data = text.encode("utf-8", "surrogateescape")
    try:
        return jose.json.loads_object(data)
    except jose.MalformedToken as error:
        raise InputError(
            f'claims: {error}; expected a JSON object like \'{{"sub": "ada"}}\''
        ) from None
