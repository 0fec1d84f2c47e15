"""The ``tessera`` command: one Typer app with a sub-command group per area.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["--version"]).output
'tessera 0.1.0\\n'
"""

from __future__ import annotations

from typing import Annotated

import typer

from tessera import __version__

from . import admin, audit, help, keys, provider, token

help.install()
app = typer.Typer(
    name="tessera",
    no_args_is_help=True,
    add_completion=False,
    # A traceback must never print local variables: they may hold keys or tokens.
    pretty_exceptions_show_locals=False,
)
app.add_typer(keys.app, name="keys", no_args_is_help=True)
app.add_typer(token.app, name="token", no_args_is_help=True)
app.add_typer(provider.db_app, name="db", no_args_is_help=True)
app.add_typer(audit.app, name="audit", no_args_is_help=True)
app.add_typer(admin.app, name="admin", no_args_is_help=True)
app.registered_commands += provider.serve_app.registered_commands
keys.app.command("rotate")(provider.rotate)
keys.app.command("list")(provider.list_keys)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tessera {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Tessera: signed tokens and their identity provider. Exit: 0 ok, 1 refused, 2 bad input."""


def run() -> None:
    """Entry point of the ``tessera`` console script.

    Example: ``tessera keys generate --alg ES256 --out signing.jwk``
    """
    app()
