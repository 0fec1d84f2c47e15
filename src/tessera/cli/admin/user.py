"""``tessera admin user``: create, list, show and change users, their status and their roles.

A user is named by its id (``USER_ID``) or by ``--username``. These commands are also the way
back in for an operator with database access who lost the admin account: ``update
--password-stdin``, ``unlock`` and ``reset-mfa`` need no token.

>>> from typer.testing import CliRunner
>>> "--password-stdin" in CliRunner().invoke(app, ["create", "--help"]).output
True
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import InputError
from ..output import JsonOption
from .connection import context, opened, refusals, transaction
from .inputs import lock_until, new_password, words
from .views import done, listing, reveal, show

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from tessera.idp.provider import Provider
    from tessera.idp.services.audit import Context
    from tessera.idp.store.models import User

    Action = Callable[[Provider, Session, User, Context], bool]

app = typer.Typer(help="Users: accounts, passwords, status, second factor and roles.")
roles_app = typer.Typer(help="The roles a user holds.")
app.add_typer(roles_app, name="roles", no_args_is_help=True)

TenantOption = Annotated[
    str, typer.Option("--tenant", "-t", help="The user's tenant.", show_default=False)
]
UserIdArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="[USER_ID]", help="The user's id (or give --username).", show_default=False
    ),
]
UsernameOption = Annotated[
    str | None, typer.Option("--username", "-u", help="The user's username (instead of USER_ID).")
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the new password from stdin (asked twice, hidden, on a terminal).",
    ),
]
GeneratePasswordOption = Annotated[
    bool,
    typer.Option("--generate-password", help="Generate a strong password and print it once."),
]


def _check_reference(user_id: str | None, username: str | None) -> None:
    if user_id is None and username is None:
        raise InputError("name the user: give its USER_ID or --username")
    if user_id is not None and username is not None:
        raise InputError("give USER_ID or --username, not both")


def _find(session: Session, tenant_id: str, user_id: str | None, username: str | None) -> User:
    from tessera.idp.services import accounts, tenants

    _check_reference(user_id, username)
    tenants.find_tenant(session, tenant_id)
    if username is not None:
        return accounts.find_user_by_name(session, tenant_id, username)
    assert user_id is not None
    return accounts.find_user(session, tenant_id, user_id)


def _label(document: dict[str, Any]) -> str:
    return f"User {document['username']} ({document['tenant']})"


@app.command()
def create(
    tenant_id: TenantOption,
    username: Annotated[
        str, typer.Argument(metavar="USERNAME", help="Login name.", show_default=False)
    ],
    email: Annotated[str | None, typer.Option("--email", help="Email address.")] = None,
    roles: Annotated[
        list[str] | None, typer.Option("--role", "-r", help="A role to grant, repeatable.")
    ] = None,
    password_stdin: PasswordStdinOption = False,
    generate_password: GeneratePasswordOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create an active user. The password is asked (hidden, twice) unless given on stdin or
    generated.

    Example: printf '%s' "$PASSWORD" | tessera admin user create -t acme ada --password-stdin
    """
    from tessera.idp.services import accounts, tenants

    with refusals(json_output), opened() as provider:
        with provider.database.session(readonly=True) as session:
            tenants.find_tenant(session, tenant_id)  # before asking for a password
        password = new_password(
            from_stdin=password_stdin,
            generate=generate_password,
            ask=True,
            min_length=provider.password_policy.min_length,
        )
        assert password is not None
        with provider.database.session() as session:
            tenants.find_tenant(session, tenant_id)
            user = accounts.create_user(
                session,
                provider.passwords,
                tenant_id=tenant_id,
                username=username,
                password=password,
                email=email,
                roles=words(roles) or (),
                policy=provider.password_policy,
                context=context(),
            )
            document = accounts.describe_user(session, user)
    generated = password if generate_password else None
    _show_new(f"{_label(document)} created", document, generated, json_output=json_output)


def _show_new(
    title: str, document: dict[str, Any], generated: str | None, *, json_output: bool
) -> None:
    # A generated password is shown once: inside the one JSON document, or apart, under a warning.
    if json_output:
        password = {} if generated is None else {"password": generated}
        show(title, {**document, **password}, json_output=True)
        return
    show(title, document, json_output=False)
    if generated is not None:
        reveal("password", generated)


@app.command("list")
def list_users(
    tenant_id: TenantOption,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=1, max=1000, help="At most this many.")
    ] = 100,
    after: Annotated[
        str | None,
        typer.Option(
            "--after",
            metavar="CURSOR",
            help="Continue after this key (the next_cursor of --json).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List a tenant's users, by username."""
    from tessera.idp.services import accounts, tenants

    with refusals(json_output), transaction(readonly=True) as (_, session):
        tenants.find_tenant(session, tenant_id)
        users = accounts.list_users(session, tenant_id, after=after, limit=limit)
        rows = [accounts.describe_user(session, user) for user in users]
        following = users[-1].username_key if len(users) == limit else None
    listing(
        "users",
        rows,
        ("id", "username", "email", "status", "roles", "mfa"),
        json_output=json_output,
        extra={"next_cursor": following},
    )


@app.command("show")
def show_user(
    tenant_id: TenantOption,
    user_id: UserIdArgument = None,
    username: UsernameOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a user: status, roles, whether a second factor is set up; never a secret."""
    from tessera.idp.services import accounts

    with refusals(json_output), transaction(readonly=True) as (_, session):
        user = _find(session, tenant_id, user_id, username)
        document = accounts.describe_user(session, user)
    show(_label(document), document, json_output=json_output)


@app.command()
def update(
    tenant_id: TenantOption,
    user_id: UserIdArgument = None,
    username: UsernameOption = None,
    email: Annotated[
        str | None, typer.Option("--email", help='New email address ("" removes it).')
    ] = None,
    password_stdin: PasswordStdinOption = False,
    generate_password: GeneratePasswordOption = False,
    json_output: JsonOption = False,
) -> None:
    """Change a user's email or password (the recovery of a lost admin password).

    Example: tessera admin user update -t default -u admin --password-stdin < new-password.txt
    """
    from tessera.idp.services import accounts

    with refusals(json_output):
        _check_reference(user_id, username)
        if email is None and not password_stdin and not generate_password:
            raise InputError(
                "nothing to change: give --email, --password-stdin or --generate-password"
            )
        with opened() as provider:
            with provider.database.session(readonly=True) as session:
                found = _find(session, tenant_id, user_id, username).id  # before asking
            password = new_password(
                from_stdin=password_stdin,
                generate=generate_password,
                ask=False,
                min_length=provider.password_policy.min_length,
            )
            with provider.database.session() as session:
                user = accounts.find_user(session, tenant_id, found)
                changed = accounts.update_user(
                    session,
                    provider.passwords,
                    user,
                    email=email,
                    password=password,
                    policy=provider.password_policy,
                    context=context(),
                )
                document = {**accounts.describe_user(session, user), "updated": sorted(changed)}
    generated = password if generate_password else None
    _show_new(_label(document), document, generated, json_output=json_output)


def _change_status(
    tenant_id: str,
    user_id: str | None,
    username: str | None,
    action: Action,
    *,
    json_output: bool,
    did: str,
    unchanged: str,
) -> None:
    from tessera.idp.services import accounts

    with refusals(json_output):
        _check_reference(user_id, username)
        with transaction() as (provider, session):
            user = _find(session, tenant_id, user_id, username)
            changed = action(provider, session, user, context())
            document = {**accounts.describe_user(session, user), "changed": changed}
    show(_label(document), document, json_output=json_output)
    if not json_output:
        done(f"{document['username']}: {did if changed else unchanged}")


def _to(status: str, until: int | None = None) -> Action:
    """The status change, as the provider's one flow decides it (the admin API calls it too)."""

    def action(provider: Provider, session: Session, user: User, ctx: Context) -> bool:
        from tessera.idp.flows.user_status import change_status

        return change_status(provider, session, user, status, until=until, context=ctx)

    return action


def _status(user: User) -> str:
    from tessera.idp.services.accounts import effective_status

    return effective_status(user)


@app.command()
def disable(
    tenant_id: TenantOption,
    user_id: UserIdArgument = None,
    username: UsernameOption = None,
    json_output: JsonOption = False,
) -> None:
    """Disable a user and end every session: refresh tokens revoked, access tokens refused."""
    _change_status(
        tenant_id,
        user_id,
        username,
        _to("disabled"),
        json_output=json_output,
        did="disabled; every session ended",
        unchanged="was disabled already",
    )


@app.command()
def enable(
    tenant_id: TenantOption,
    user_id: UserIdArgument = None,
    username: UsernameOption = None,
    json_output: JsonOption = False,
) -> None:
    """Enable a disabled user, or unlock a locked one (as `unlock` does)."""
    _change_status(
        tenant_id,
        user_id,
        username,
        _to("active"),
        json_output=json_output,
        did="enabled",
        unchanged="was active already",
    )


@app.command()
def lock(
    tenant_id: TenantOption,
    user_id: UserIdArgument = None,
    username: UsernameOption = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="TIME",
            help="Until a time (ISO 8601, UTC by default) or for a while (30m, 2d); "
            "default: until unlocked.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Lock a user out: no login, no refresh, until unlocked or --until.

    Example: tessera admin user lock -t acme -u ada --until 2h
    """
    with refusals(json_output):
        ends = lock_until(until, now=int(time.time()))
    _change_status(
        tenant_id,
        user_id,
        username,
        _to("locked", until=ends),
        json_output=json_output,
        did="locked",
        unchanged="was locked so already",
    )


@app.command()
def unlock(
    tenant_id: TenantOption,
    user_id: UserIdArgument = None,
    username: UsernameOption = None,
    json_output: JsonOption = False,
) -> None:
    """Unlock a user locked by an admin or by too many failed logins, and forget its failed
    attempts (a disabled user stays disabled).

    The failure counters are shared through Redis when TESSERA_REDIS_URL is set; without it each
    server counts in its own memory, which this command cannot reach: there, a lock for failed
    logins also ends when its time is up (lockout_duration).
    """

    def action(provider: Provider, session: Session, user: User, ctx: Context) -> bool:
        was_locked = _status(user) == "locked"
        provider.lockout.unlock(session, user, context=ctx)
        return was_locked

    _change_status(
        tenant_id,
        user_id,
        username,
        action,
        json_output=json_output,
        did="unlocked",
        unchanged="was not locked (failure counters cleared)",
    )


@app.command("reset-mfa")
def reset_mfa(
    tenant_id: TenantOption,
    user_id: UserIdArgument = None,
    username: UsernameOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove a user's second factor and recovery codes; they enrol again at next login."""
    from tessera.idp.services import mfa

    def action(provider: Provider, session: Session, user: User, ctx: Context) -> bool:
        had = any(
            value is not None for value in (user.mfa_enabled_at, user.mfa_secret, user.mfa_pending)
        )
        mfa.reset_mfa(session, user, context=ctx)
        return had

    _change_status(
        tenant_id,
        user_id,
        username,
        action,
        json_output=json_output,
        did="second factor removed",
        unchanged="had no second factor",
    )


@roles_app.command("set")
def set_roles(
    tenant_id: TenantOption,
    arguments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[USER_ID] ROLE...",
            help="The user's id (unless --username names it), then every role it will hold.",
            show_default=False,
        ),
    ] = None,
    username: UsernameOption = None,
    none: Annotated[bool, typer.Option("--none", help="Take every role away.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Make these exactly the user's roles; tokens carry the change from their next refresh.

    Example: tessera admin user roles set -t acme -u ada member auditor
    """
    from tessera.idp.services import accounts, rbac

    items = list(arguments or ())
    user_id = None
    if username is None and items:
        user_id, items = items[0], items[1:]
    names = words(items) or ()
    with refusals(json_output):
        _check_reference(user_id, username)
        if not names and not none:
            raise InputError("give the roles to set, or --none to take every role away")
        if names and none:
            raise InputError("give roles or --none, not both")
        with transaction() as (_, session):
            user = _find(session, tenant_id, user_id, username)
            before = rbac.access_of(session, user.id).roles
            after = rbac.set_roles(session, user, names, context=context())
            document = {**accounts.describe_user(session, user), "changed": before != after}
    show(_label(document), document, json_output=json_output)
