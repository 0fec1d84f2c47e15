"""Output safety: text from a token can never drive the terminal it is shown on."""

from __future__ import annotations

import json

import pytest

from tessera.cli.output import printable, to_json


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\u001b[2J"),
        ("\x9b31m", "\\u009b31m"),
        ("ab\u202ecd", "ab\\u202ecd"),
        ("\x7f", "\\u007f"),
        ("tag\U000e0041", "tag\\udb40\\udc41"),
    ],
)
def test_printable_escapes_control_and_format_characters(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_keeps_ordinary_text_and_newlines() -> None:
    assert printable("Ada Lovelace — Zoë, 東京\nline two") == "Ada Lovelace — Zoë, 東京\nline two"


def test_escaped_json_still_parses_to_the_same_value() -> None:
    value = {"sub": "\x1b[31m\u202e\U000e0041\ud800x", "name": "Zoë"}

    assert json.loads(to_json(value)) == value
