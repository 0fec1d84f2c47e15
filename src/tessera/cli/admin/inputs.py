"""The admin commands' inputs: repeated option values, new passwords, lock times.

A password is never an option value (it would sit in the shell history and the process list):
it is read from stdin, asked twice without echo, or generated.

>>> words(["read write", "read", "profile"])
('read', 'write', 'profile')
>>> lock_until("2h", now=1_000_000)
1007200
"""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime

import typer

from ..errors import InputError
from ..params import parse_duration

# The password policy refuses anything longer (4 KiB before normalisation) anyway.
_MAX_PASSWORD_CHARS = 4 * 1024 + 2


def words(values: list[str] | None) -> tuple[str, ...] | None:
    """Repeated option values, each maybe several space-separated words, in order, once each;
    ``None`` when the option was not given at all (so "unchanged" differs from "empty").

    >>> words(None), words([""])
    (None, ())
    """
    if values is None:
        return None
    return tuple(dict.fromkeys(word for value in values for word in value.split()))


def display_name(value: str | None) -> str | None:
    """A ``--name`` as given (``None``: not given); a blank one is refused.

    >>> display_name(" Acme "), display_name(None)
    (' Acme ', None)
    """
    if value is not None and not value.strip():
        raise InputError("--name cannot be blank")
    return value


def new_password(
    *, from_stdin: bool, generate: bool, ask: bool, min_length: int = 12
) -> str | None:
    """The new password the operator chose: from stdin (asked without echo when stdin is a
    terminal), generated (at least 32 and ``min_length`` characters), or asked when ``ask``;
    ``None`` when none was wanted.

    >>> new_password(from_stdin=False, generate=False, ask=False) is None
    True
    >>> len(new_password(from_stdin=False, generate=True, ask=False, min_length=100))
    100
    """
    if from_stdin and generate:
        raise InputError("give --password-stdin or --generate-password, not both")
    if generate:
        return secrets.token_urlsafe(max(24, (min_length * 3 + 3) // 4))
    if from_stdin and not sys.stdin.isatty():
        return _read_stdin()
    if from_stdin or ask:
        password: str = typer.prompt(
            "New password", hide_input=True, confirmation_prompt=True, err=True
        )
        return password
    return None


def _read_stdin() -> str:
    try:
        text = sys.stdin.read(_MAX_PASSWORD_CHARS)
    except UnicodeDecodeError:
        raise InputError("stdin does not hold a password (not text)") from None
    # One line: the trailing newline of `echo` or a file is not part of the password.
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise InputError("no password on stdin")
    if "\n" in password:
        raise InputError("the password on stdin must be one line")
    return password


def lock_until(text: str | None, *, now: int) -> int | None:
    """When a lock ends: ``None`` (until unlocked), a duration from now (``30m``, ``2d``) or an
    ISO 8601 time (UTC unless it names its offset), which must lie in the future.

    >>> lock_until("2030-01-01T00:00:00Z", now=0)
    1893456000
    >>> lock_until("2000-01-01", now=1_000_000_000)
    Traceback (most recent call last):
    ...
    tessera.cli.errors.InputError: --until must lie in the future
    """
    if text is None:
        return None
    if text[:1].isdigit() and text[-1:] in "smhdw" and "-" not in text:
        return now + parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"invalid --until {text!r}; expected a duration (30m, 2d) or an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    until = int(moment.timestamp())
    if until <= now:
        raise InputError("--until must lie in the future")
    return until
