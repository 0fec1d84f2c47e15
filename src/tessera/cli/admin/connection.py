"""How an admin command reaches the database, who it acts as, and how a refusal ends it.

The command opens the provider from the same ``TESSERA_*`` settings (or ``TESSERA_CONFIG``
file) as the server, migrates the database, and checks that the master key opens its signing
keys before it changes anything: a secret hashed or sealed under another key would be useless
to the server. Every change
is audited with the actor ``cli:<login name>``.

Refusals end the command with one line (``--json``: one JSON document) and an exit code:
2 bad input (an invalid value, a weak password), 3 not found, 4 conflict, 1 the database could
not be used.

>>> actor().startswith("cli:")
True
>>> EXIT_NOT_FOUND, EXIT_CONFLICT
(3, 4)
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from tessera import __version__

from ..errors import EXIT_INPUT, EXIT_REFUSED, InputError
from ..output import fail
from ..settings import settings_errors

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tessera.idp.provider import Provider
    from tessera.idp.services.audit import Context

EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
# A refused change, by its code (a permission the operator lacks does not arise here: the CLI
# acts with the database's full rights).
_EXIT_BY_CODE = {"not_found": EXIT_NOT_FOUND, "conflict": EXIT_CONFLICT, "invalid": EXIT_INPUT}


def actor() -> str:
    """Who the audit log says made a change: ``cli:`` and the operator's login name."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in the environment or passwd
        name = "unknown"
    return f"cli:{name}"


def context() -> Context:
    """The audit context of a command-line change (no IP: it did not come over a network)."""
    from tessera.idp.services.audit import Context

    return Context(actor=actor(), user_agent=f"tessera-cli/{__version__}")


@contextmanager
def opened(*, readonly: bool = False) -> Iterator[Provider]:
    """The provider on the configured database, closed after; use inside :func:`refusals`,
    which turns what goes wrong into a one-line message.

    A command that changes something migrates the database first and checks the master key
    (unsealing the active key proves it is this database's; a first key is made on an empty
    database, as the server's first start would). Unlike the server's start, no signing key is
    prepublished: a key sealed under a wrong master key would break the server. A read-only
    command (``list``, ``show``) changes nothing at all: on a database behind the code's schema
    it stops and says so.
    """
    from tessera.idp.config import Settings
    from tessera.idp.provider import Provider
    from tessera.idp.services.secrets import MasterKeyError

    provider = Provider(Settings())
    try:
        if readonly:
            if not provider.database.at_head():
                raise InputError(
                    "the database is not at the current schema: run `tessera db upgrade`"
                    " (or start the server) first"
                )
        else:
            provider.database.upgrade()
            try:
                provider.keyring.signing_key()
            except MasterKeyError:
                raise MasterKeyError(
                    "the master key does not open this database's signing keys; use the server's"
                ) from None
        yield provider
    finally:
        provider.close()


@contextmanager
def transaction(*, readonly: bool = False) -> Iterator[tuple[Provider, Session]]:
    """:func:`opened`, and one transaction on its database (committed when the block ends)."""
    with (
        opened(readonly=readonly) as provider,
        provider.database.session(readonly=readonly) as session,
    ):
        yield provider, session


@contextmanager
def refusals(json_output: bool) -> Iterator[None]:
    """Turn every expected failure of an admin command into one line and its exit code.

    >>> with refusals(json_output=False):
    ...     raise InputError("nothing to change")
    Traceback (most recent call last):
    ...
    typer.exceptions.Exit: 2
    """
    with settings_errors(json_output):
        try:
            yield
        except Exception as error:
            _refuse(error, json_output)


def _refuse(error: Exception, json_output: bool) -> NoReturn:
    if isinstance(error, InputError):
        _end(error.code, str(error), EXIT_INPUT, json_output)
    if isinstance(error, UnicodeEncodeError) or isinstance(
        getattr(error, "orig", None), UnicodeError
    ):
        # Bytes that are not UTF-8 reach Python as lone surrogates, which no database stores.
        _end("invalid_input", "an argument is not valid UTF-8 text", EXIT_INPUT, json_output)
    # The idp modules are loaded by now if the command reached them; only then can they fail.
    from sqlalchemy.exc import (
        ArgumentError,
        DataError,
        DBAPIError,
        IntegrityError,
        SQLAlchemyError,
    )

    from tessera.idp.errors import AdminError
    from tessera.idp.services.password_policy import PasswordRejected
    from tessera.idp.services.secrets import MasterKeyError

    if isinstance(error, AdminError):
        _end(error.code, error.detail, _EXIT_BY_CODE.get(error.code, EXIT_REFUSED), json_output)
    if isinstance(error, PasswordRejected):
        _end("weak_password", str(error), EXIT_INPUT, json_output, reason=error.reason)
    if isinstance(error, MasterKeyError):
        _end("invalid_master_key", str(error), EXIT_INPUT, json_output)
    if isinstance(error, IntegrityError):
        # Only a change made at the same moment by someone else gets past the services' checks.
        message = "the change clashes with another one made at the same time; try again"
        _end("conflict", message, EXIT_CONFLICT, json_output)
    if isinstance(error, DataError):
        # A value the column cannot hold (too long for it): the driver says which limit.
        _end(
            "invalid_input",
            f"the database refused a value: {_reason(error)}",
            EXIT_INPUT,
            json_output,
        )
    if isinstance(error, ArgumentError):
        _end("invalid_settings", "database_url is not a usable URL", EXIT_INPUT, json_output)
    if isinstance(error, DBAPIError):
        # The driver's own message only: the statement's parameters may hold hashes.
        message = f"cannot use the database ({type(error).__name__}): {_reason(error)}"
        _end("database_error", message, EXIT_REFUSED, json_output)
    if isinstance(error, SQLAlchemyError):
        message = f"cannot use the database ({type(error).__name__})"
        _end("database_error", message, EXIT_REFUSED, json_output)
    raise error


def _reason(error: Any) -> str:
    # The driver's first line only: SQLAlchemy's own text adds the statement and its
    # parameters, which may hold password hashes.
    lines = str(error.orig).strip().splitlines()
    return lines[0] if lines else type(error.orig).__name__


def _end(code: str, message: str, exit_code: int, json_output: bool, **extra: Any) -> NoReturn:
    fail(
        {"code": code, "message": message, **extra},
        f"error: {message}",
        exit_code=exit_code,
        json_output=json_output,
    )
