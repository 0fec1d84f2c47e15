"""``tessera serve``, ``tessera db upgrade`` and ``tessera keys rotate|list``: the identity
provider's commands. They read the same ``TESSERA_*`` settings as the server.

>>> from typer.testing import CliRunner
>>> "serve" in CliRunner().invoke(serve_app, ["--help"]).output
True
"""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from .output import JsonOption, emit_json
from .settings import load_settings, settings_errors

serve_app = typer.Typer(help="Run the identity provider.")
db_app = typer.Typer(help="Database maintenance.")


@serve_app.command("serve")
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default: TESSERA_HOST, else 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to listen on (default: TESSERA_PORT, else 8000); without TESSERA_ISSUER"
            " the issuer follows it."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(metavar="N", help="Worker processes (default: TESSERA_WORKERS, else 1)."),
    ] = None,
) -> None:
    """Start the identity provider.

    Migrations and a signing key come first; the very first start also creates a default tenant,
    an admin and a demo client, whose credentials are printed once.
    """
    import uvicorn

    from tessera.idp.flows.bootstrap import bootstrap
    from tessera.idp.http.app import create_app
    from tessera.idp.logs import log_config
    from tessera.idp.provider import Provider

    with settings_errors():
        settings = load_settings(host=host, port=port, workers=workers)
        provider = Provider(settings)
    provider.start()
    first = bootstrap(provider) if settings.bootstrap else None
    _banner(settings, first)
    if settings.workers > 1:
        provider.close()
        os.environ.setdefault("TESSERA_ISSUER", settings.issuer)
        uvicorn.run(
            "tessera.idp.http.asgi:app_factory",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=log_config(),
            access_log=settings.access_log,
        )
        return
    uvicorn.run(
        create_app(settings, provider),
        host=settings.host,
        port=settings.port,
        log_config=log_config(),  # one JSON object a line on stderr
        access_log=settings.access_log,  # the audit log already records every grant
    )


def _banner(settings: Any, first: Any) -> None:
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"\n[bold]Tessera identity provider[/] on {settings.issuer}")
    if settings.issuer != settings.listen_url:
        console.print(f"  listening on {settings.listen_url} (the issuer is set explicitly)")
    console.print(f"  database   {settings.database_url}")
    console.print(f"  discovery  {settings.issuer}/.well-known/openid-configuration")
    console.print(f"  API docs   {settings.issuer}/docs")
    if first is None:
        console.print("  (credentials were printed at first start only)\n")
        return
    console.print("\n[bold yellow]First start — these credentials are shown once:[/]")
    console.print(
        f"  admin login   {first.admin_username} / {first.admin_password}"
        f"   (log in at {settings.issuer}/)"
    )
    console.print(f"  demo client   {first.client_id} / {first.client_secret}")
    curl = (
        f"curl -s -u {shlex.quote(first.client_id + ':' + first.client_secret)} "
        f"-d grant_type=client_credentials {settings.issuer}/oauth2/token"
    )
    console.print("\nGet a token:\n  " + curl + "\n", soft_wrap=True)


@db_app.command("upgrade")
def upgrade(json_output: JsonOption = False) -> None:
    """Run database migrations up to the latest (the server also does this at start)."""
    from tessera.idp.store.database import Database

    with settings_errors(json_output):
        settings = load_settings()
    database = Database(settings.database_url)
    database.upgrade()
    database.dispose()
    if json_output:
        emit_json({"upgraded": True, "database": settings.database_url})
    else:
        typer.echo(f"database at head: {settings.database_url}")


def rotate(
    immediate: Annotated[
        bool, typer.Option("--immediate", help="Sign with the new key at once (a compromised key).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Rotate the provider's signing key now.

    The new key is published at once and signs after the prepublication period (or at once
    with --immediate).
    """
    from tessera.idp.provider import Provider

    with settings_errors(json_output):
        settings = load_settings()
        provider = Provider(settings)
    provider.start()
    kid = provider.keyring.rotate(immediate=immediate)
    provider.close()
    if json_output:
        emit_json({"rotated": True, "kid": kid, "immediate": immediate})
    else:
        typer.echo(f"new signing key {kid}")


def list_keys(json_output: JsonOption = False) -> None:
    """List the provider's signing keys and where each is in its life."""
    import time

    from tessera.idp.provider import Provider

    with settings_errors(json_output):
        settings = load_settings()
        provider = Provider(settings)
    provider.start()
    now = time.time()
    infos = provider.keyring.keys(now)
    provider.close()
    rows = [
        {
            "kid": info.kid,
            "alg": info.alg,
            "state": info.state(now),
            "activates_at": info.activates_at,
            "retires_at": info.retires_at,
            "expires_at": info.expires_at,
        }
        for info in infos
    ]
    if json_output:
        emit_json({"keys": rows})
        return
    for info in infos:
        until = datetime.fromtimestamp(info.retires_at, UTC).isoformat()
        typer.echo(f"{info.state(now):8} {info.alg:6} {info.kid}  signs until {until}")
