"""The provider's settings as every command that needs them reads them: ``load_settings`` with
the command's options, inside ``settings_errors``, which turns unusable settings into exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import EXIT_INPUT
from .output import fail

if TYPE_CHECKING:  # the provider's modules load only for the commands that use them
    from tessera.idp.config import Settings


@contextmanager
def settings_errors(json_output: bool = False) -> Iterator[None]:
    """Turn unusable settings (a malformed master key, an out-of-range value) into one line
    and exit code 2.

    >>> with settings_errors(json_output=True):
    ...     load_settings(port=70000)
    Traceback (most recent call last):
    ...
    typer.exceptions.Exit: 2
    """
    from pydantic import ValidationError

    from tessera.idp.services.secrets import MasterKeyError

    try:
        yield
    except MasterKeyError as error:
        fail(
            {"code": "invalid_master_key", "message": str(error)},
            f"error: {error}",
            exit_code=EXIT_INPUT,
            json_output=json_output,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        fail(
            {"code": "invalid_settings", "message": problems},
            f"error: invalid settings: {problems}",
            exit_code=EXIT_INPUT,
            json_output=json_output,
        )


def load_settings(**overrides: Any) -> Settings:
    """The provider's settings (``TESSERA_*``, the TOML file) with the command's own options;
    an option left unset (``None``) defers to them. Without an explicit issuer, it follows the
    host and port."""
    from tessera.idp.config import Settings

    given = {name: value for name, value in overrides.items() if value is not None}
    return Settings(**given)
