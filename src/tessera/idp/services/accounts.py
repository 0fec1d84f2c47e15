"""Users: creation and password authentication (argon2id, no user enumeration).

>>> normalise_username("  Ada@Example.COM ")
'ada@example.com'
"""

from __future__ import annotations

import time
import unicodedata
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.models import User
from .password_policy import PasswordPolicy
from .passwords import Passwords

DEFAULT_POLICY = PasswordPolicy()


def normalise_username(username: str) -> str:
    """The case-insensitive key a username is unique under (NFKC, casefolded, trimmed)."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def create_user(
    session: Session,
    passwords: Passwords,
    *,
    tenant_id: str,
    username: str,
    password: str,
    email: str | None = None,
    roles: tuple[str, ...] = (),
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> User:
    """Create an active user with an argon2id password hash, once ``policy`` accepts the
    password (:class:`~.password_policy.PasswordRejected` otherwise; nothing is written).

    >>> from tessera.idp.services.password_policy import PasswordRejected
    >>> try:
    ...     create_user(None, Passwords(), tenant_id="t", username="ada", password="short")
    ... except PasswordRejected as error:
    ...     print(error.reason)
    too_short
    """
    policy.check(password, username=username, email=email)
    now = int(time.time())
    user = User(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        username=username.strip(),
        username_key=normalise_username(username),
        email=email,
        password_hash=passwords.hash(password),
        status="active",
        roles=" ".join(roles),
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    return user


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
    if user.status != "active":
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
        user.updated_at = int(time.time())
    return user
