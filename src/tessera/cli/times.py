"""Token times (``exp``, ``iat``, ``nbf``) for people: ISO 8601 UTC and relative to now.

>>> describe("exp", 1_000_900, now=1_000_000)
{'epoch': 1000900, 'iso': '1970-01-12T14:01:40Z', 'relative': 'in 15 min'}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tessera import jose

TIME_CLAIMS = jose.claims.NUMERIC_DATES


def describe(claim: str, value: Any, *, now: float) -> dict[str, Any]:
    """``value`` as ISO 8601 UTC and relative to ``now``; both ``None`` if it is not a time.

    >>> describe("exp", 1_000_000 - 3 * 3600, now=1_000_000)["relative"]
    'expired 3 h ago'
    """
    if not jose.claims.is_numeric_date(value):  # null, a string, a bool, or out of range
        return {"epoch": value, "iso": None, "relative": None}
    moment = datetime.fromtimestamp(value, UTC)
    iso = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"epoch": value, "iso": iso, "relative": relative(claim, value - now)}


def relative(claim: str, seconds: float) -> str:
    """How far a time lies from now, in words; a past ``exp`` reads "expired … ago".

    >>> relative("iat", -90), relative("nbf", 5 * 86400), relative("exp", -10)
    ('1 min ago', 'in 5 d', 'expired 10 s ago')
    """
    if abs(seconds) < 1:
        return "expired now" if claim == "exp" else "now"
    if seconds > 0:
        return f"in {span(seconds)}"
    return f"{'expired ' if claim == 'exp' else ''}{span(-seconds)} ago"


def span(seconds: float) -> str:
    """A positive number of seconds in its largest whole unit.

    >>> span(59), span(14 * 60 + 59), span(47 * 3600), span(49 * 3600)
    ('59 s', '14 min', '47 h', '2 d')
    """
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 2 * 86400:
        return f"{whole // 3600} h"
    return f"{whole // 86400} d"
