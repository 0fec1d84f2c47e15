"""Where output goes: results on stdout, messages on stderr, ``--json`` as one JSON document.

Anything shown may come from an untrusted token, so text passes through :func:`printable`
and reaches Rich as ``Text`` (never as markup) before it meets a terminal.

>>> printable('"\\x1b[2J"')
'"\\\\u001b[2J"'
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from tessera import jose

from .errors import EXIT_INPUT, InputError

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Machine-readable output: one JSON document on stdout."),
]

# Control, format (bidi overrides), separator, surrogate and private-use characters: the ones
# that can move a terminal's cursor or disguise what is shown.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_NON_ASCII = re.compile(r"[^\x20-\x7e\n]")


def stdout() -> Console:
    """A Rich console on stdout, for views made for people (tables, panels).

    >>> stdout().stderr
    False
    """
    return Console(highlight=False)


def stderr() -> Console:
    """A Rich console on stderr for one-line messages, never wrapped or highlighted.

    >>> stderr().stderr
    True
    """
    return Console(stderr=True, highlight=False, soft_wrap=True)


def printable(text: str) -> str:
    """Escape every character that could drive a terminal as a JSON ``\\uXXXX`` sequence.

    >>> printable("ada\\u202e")
    'ada\\\\u202e'
    """
    return _NON_ASCII.sub(_escape_unsafe, text)


def _escape_unsafe(match: re.Match[str]) -> str:
    char = match.group()
    if unicodedata.category(char) not in _UNSAFE_CATEGORIES:
        return char
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def to_json(value: Any) -> str:
    """Indented JSON text, safe to show on a terminal.

    >>> to_json({"sub": "ada"})
    '{\\n  "sub": "ada"\\n}'
    """
    return printable(json.dumps(value, indent=2, ensure_ascii=False))


def emit_json(document: Mapping[str, Any]) -> None:
    """Print the command's one JSON document on stdout.

    >>> emit_json({"valid": True})
    {
      "valid": true
    }
    """
    typer.echo(to_json(document))


def emit_text(text: str) -> None:
    """Print a result verbatim on stdout (a token, a key, a thumbprint), unwrapped.

    >>> emit_text("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
    eyJhbGciOiJFUzI1NiJ9.e30.c2ln
    """
    typer.echo(printable(text))


def note(message: str) -> None:
    """A one-line message for people, on stderr.

    >>> note("wrote key.jwk")
    """
    stderr().print(Text(printable(message)))


def fail(document: Mapping[str, Any], line: str, *, exit_code: int, json_output: bool) -> NoReturn:
    """End the command: ``document`` on stdout with ``--json``, else ``line`` on stderr.

    >>> fail({"code": "x"}, "error: x", exit_code=2, json_output=False)
    Traceback (most recent call last):
    ...
    typer.exceptions.Exit: 2
    """
    if json_output:
        emit_json(document)
    else:
        stderr().print(Text(printable(line), style="bold red"))
    raise typer.Exit(exit_code)


@contextmanager
def handled(json_output: bool) -> Iterator[None]:
    """Turn bad input (and unusable keys) into a one-line message and exit code 2.

    >>> with handled(json_output=True):
    ...     raise InputError("bad duration")
    Traceback (most recent call last):
    ...
    typer.exceptions.Exit: 2
    """
    try:
        yield
    except (InputError, jose.InvalidKey, jose.UsageError) as error:
        message = str(error)
        fail(
            {"code": error.code, "message": message},
            f"error: {message}",
            exit_code=EXIT_INPUT,
            json_output=json_output,
        )
