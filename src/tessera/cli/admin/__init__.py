"""``tessera admin``: tenants, users, roles and clients, straight on the database.

For bootstrap and recovery: it needs the server's settings (``TESSERA_DATABASE_URL``, the master
key) and no token. Each change goes through the service the admin API uses and writes the same
audit row, with the actor ``cli:<login name>``. Exit codes: 0 ok, 1 the database could not be
used, 2 bad input, 3 not found, 4 conflict.

>>> from typer.testing import CliRunner
>>> result = CliRunner().invoke(app, ["--help"])
>>> result.exit_code, all(name in result.output for name in ("tenant", "user", "role", "client"))
(0, True)
"""

from __future__ import annotations

import typer

from . import client, role, tenant, user

app = typer.Typer(
    help="Administer tenants, users, roles and clients directly on the database "
    "(bootstrap, recovery). Exit: 0 ok, 1 database unusable, 2 bad input, 3 not found, "
    "4 conflict."
)
app.add_typer(tenant.app, name="tenant", no_args_is_help=True)
app.add_typer(user.app, name="user", no_args_is_help=True)
app.add_typer(role.app, name="role", no_args_is_help=True)
app.add_typer(client.app, name="client", no_args_is_help=True)
