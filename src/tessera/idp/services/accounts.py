"""Users: creation, changes, status (active, locked, disabled) and password authentication
(argon2id, no user enumeration). Every change an admin makes is audited with before and after.

>>> normalise_username("  Ada@Example.COM ")
'ada@example.com'
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import conflict, not_found, unprocessable
from ..store.models import NAME_LENGTH, UUID_LENGTH, User
from .audit import Context, record
from .password_policy import PasswordPolicy
from .passwords import Passwords
from .rbac import access_of, set_roles

DEFAULT_POLICY = PasswordPolicy()
STATUSES = ("active", "locked", "disabled")

# Deliberately loose (RFC 5322 is not a regex): one @, something on each side, no spaces.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def normalise_username(username: str) -> str:
    """The case-insensitive key a username is unique under (NFKC, casefolded, trimmed)."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def _email_key(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    if not _EMAIL.fullmatch(email.strip()):
        raise unprocessable("email is not an address")
    return normalise_username(email)


def _ensure_free(session: Session, tenant_id: str, user_id: str | None, **keys: str | None) -> None:
    for column, value in keys.items():
        if value is None:
            continue
        taken = session.scalar(
            select(User.id).where(User.tenant_id == tenant_id, getattr(User, column) == value)
        )
        if taken is not None and taken != user_id:
            raise conflict(f"{column.removesuffix('_key')} already taken in this tenant")


def create_user(
    session: Session,
    passwords: Passwords,
    *,
    tenant_id: str,
    username: str,
    password: str,
    email: str | None = None,
    roles: Iterable[str] = (),
    policy: PasswordPolicy = DEFAULT_POLICY,
    held: frozenset[str] | None = None,
    context: Context | None = None,
) -> User:
    """Create an active user with an argon2id password hash and the named roles, once ``policy``
    accepts the password (:class:`~.password_policy.PasswordRejected` otherwise; nothing is
    written). A taken username or email is a 409 :class:`~tessera.idp.errors.AdminError`; a
    role with an ``admin:*`` permission the creator does not hold (``held``) a 403.

    >>> from tessera.idp.services.password_policy import PasswordRejected
    >>> try:
    ...     create_user(None, Passwords(), tenant_id="t", username="ada", password="short")
    ... except PasswordRejected as error:
    ...     print(error.reason)
    too_short
    """
    policy.check(password, username=username, email=email)
    username_key = normalise_username(username)
    if not username_key or len(username_key) > NAME_LENGTH:
        raise unprocessable(f"a username is 1-{NAME_LENGTH} characters")
    email_key = _email_key(email)
    _ensure_free(session, tenant_id, None, username_key=username_key, email_key=email_key)
    now = int(time.time())
    user = User(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        username=username.strip(),
        username_key=username_key,
        email=email.strip() if email and email_key else None,
        email_key=email_key,
        password_hash=passwords.hash(password),
        status="active",
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    granted = set_roles(session, user, roles, held=held, audited=False)
    record(
        session,
        "user.created",
        tenant_id=tenant_id,
        context=context,
        subject=user.id,
        details={"after": {"username": user.username, "email": user.email, "roles": granted}},
    )
    return user


def find_user(session: Session, tenant_id: str, user_id: str) -> User:
    """The user ``user_id`` of ``tenant_id``; one of another tenant is as absent (404)."""
    user = session.get(User, user_id) if len(user_id) <= UUID_LENGTH else None
    if user is None or user.tenant_id != tenant_id:
        raise not_found("user")
    return user


def find_user_by_name(session: Session, tenant_id: str, username: str) -> User:
    """The user called ``username`` (case-insensitively) in ``tenant_id`` (404 otherwise)."""
    user = session.scalar(
        select(User).where(
            User.tenant_id == tenant_id, User.username_key == normalise_username(username)
        )
    )
    if user is None:
        raise not_found("user")
    return user


def list_users(
    session: Session, tenant_id: str, *, after: str | None = None, limit: int = 100
) -> list[User]:
    """Users of ``tenant_id`` by username key, ``limit`` at a time after the key ``after``."""
    query = select(User).where(User.tenant_id == tenant_id)
    if after is not None:
        query = query.where(User.username_key > after)
    return list(session.scalars(query.order_by(User.username_key).limit(limit)))


def describe_user(session: Session, user: User, *, now: int | None = None) -> dict[str, Any]:
    """What an admin sees of a user: never a hash or a secret."""
    access = access_of(session, user.id)
    return {
        "id": user.id,
        "tenant": user.tenant_id,
        "username": user.username,
        "email": user.email,
        "status": effective_status(user, now),
        "locked_until": user.locked_until,
        "roles": list(access.roles),
        "mfa": user.mfa_enabled_at is not None,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def effective_status(user: User, now: int | None = None) -> str:
    """``user.status``, except that a lock whose time has passed reads as ``active``."""
    return status_at(user.status, user.locked_until, int(time.time()) if now is None else now)


def status_at(status: str, locked_until: int | None, now: int) -> str:
    """A user's ``status`` at ``now``: a lock whose time has passed reads as ``active``.

    >>> status_at("locked", 100, 99), status_at("locked", 100, 100)
    ('locked', 'active')
    """
    if status == "locked" and locked_until is not None and locked_until <= now:
        return "active"
    return status


def update_user(
    session: Session,
    passwords: Passwords,
    user: User,
    *,
    email: str | None = None,
    password: str | None = None,
    policy: PasswordPolicy = DEFAULT_POLICY,
    context: Context | None = None,
) -> dict[str, Any]:
    """Change a user's email or password (an empty email removes it). Audited with before and
    after of the changed fields — a password only as ``"changed"``. Returns the changes."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if email is not None:
        email_key = _email_key(email)
        if email_key != user.email_key:
            _ensure_free(session, user.tenant_id, user.id, email_key=email_key)
            before["email"], after["email"] = user.email, email.strip() if email_key else None
            user.email, user.email_key = after["email"], email_key
    if password is not None:
        policy.check(password, username=user.username, email=user.email)
        user.password_hash = passwords.hash(password)
        after["password"] = "changed"
    if after:
        user.updated_at = int(time.time())
        session.flush()
        record(
            session,
            "user.updated",
            tenant_id=user.tenant_id,
            context=context,
            subject=user.id,
            details={"before": before, "after": after},
        )
    return after


def set_status(
    session: Session,
    user: User,
    status: str,
    *,
    until: int | None = None,
    reason: str = "admin",
    context: Context | None = None,
    note: dict[str, Any] | None = None,
) -> bool:
    """Move a user to ``status`` (``locked`` until ``until``, or until unlocked). Audited as
    ``user.locked``, ``user.unlocked``, ``user.disabled`` or ``user.enabled`` with ``reason``
    (and ``note``, what the caller did along with it). Returns whether anything changed.
    Ending a disabled user's sessions is :func:`tessera.idp.flows.revoke.disable_user`'s.
    """
    if status not in STATUSES:
        raise unprocessable(f"status is one of {', '.join(STATUSES)}")
    current = effective_status(user)
    if status == "locked" and current == "disabled":
        # A timed lock ends in "active": it must never re-enable a disabled user.
        raise unprocessable("a disabled user cannot be locked; enable them first")
    if current == status and (status != "locked" or user.locked_until == until):
        return False
    before = {"status": current, "locked_until": user.locked_until}
    user.status, user.locked_until = status, until if status == "locked" else None
    user.updated_at = int(time.time())
    session.flush()
    event = {
        "locked": "user.locked",
        "disabled": "user.disabled",
        "active": "user.unlocked" if current == "locked" else "user.enabled",
    }[status]
    record(
        session,
        event,
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        details={
            "reason": reason,
            "before": before,
            "after": {"status": status, "locked_until": user.locked_until},
            **(note or {}),
        },
    )
    return True


def authenticate_user(
    session: Session, passwords: Passwords, *, tenant_id: str, username: str, password: str
) -> User | None:
    """The active user these credentials belong to, or ``None`` — after the same argon2 work
    whether the user exists or not. Re-hashes the password when the parameters changed."""
    user = session.scalar(
        select(User).where(
            User.tenant_id == tenant_id, User.username_key == normalise_username(username)
        )
    )
    if not passwords.verify(user.password_hash if user else None, password) or user is None:
        return None
    if effective_status(user) != "active":
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
        user.updated_at = int(time.time())
    return user
