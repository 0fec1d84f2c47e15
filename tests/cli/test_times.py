"""Times for people: ISO 8601 UTC and the relative phrase ``tessera token inspect`` shows."""

from __future__ import annotations

import pytest

from tessera.cli.times import describe, relative

NOW = 1_700_000_000


@pytest.mark.parametrize(
    ("claim", "offset", "phrase"),
    [
        ("exp", 14 * 60 + 59, "in 14 min"),
        ("exp", -3 * 3600 - 1, "expired 3 h ago"),
        ("exp", 0, "expired now"),
        ("iat", -45, "45 s ago"),
        ("nbf", 36 * 3600, "in 36 h"),
        ("iat", -10 * 86400, "10 d ago"),
    ],
)
def test_relative_reads_like_a_sentence(claim: str, offset: int, phrase: str) -> None:
    assert relative(claim, offset) == phrase


def test_describe_gives_iso_8601_utc() -> None:
    assert describe("iat", NOW, now=NOW) == {
        "epoch": NOW,
        "iso": "2023-11-14T22:13:20Z",
        "relative": "now",
    }


@pytest.mark.parametrize("value", ["soon", True, None, 10**30, [1]])
def test_describe_leaves_what_is_not_a_time_undescribed(value: object) -> None:
    assert describe("exp", value, now=NOW) == {"epoch": value, "iso": None, "relative": None}
