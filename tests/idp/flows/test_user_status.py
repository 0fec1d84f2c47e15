"""One decision for a user's status, whichever front-end asks (the admin API, the CLI): every
(current status, wanted status) pair has one outcome, one audit event, and one effect on
sessions."""

from __future__ import annotations

import time

import pytest

from tessera.idp.errors import AdminError
from tessera.idp.flows.user_status import change_status
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import effective_status
from tessera.idp.services.audit import Context
from tessera.idp.store.models import User

from ..conftest import add_user, audit_events

ADMIN = Context(None, None, "root")


def _set(provider: Provider, user_id: str, status: str) -> tuple[bool, str, str | None]:
    """Change the status; (changed, status after, the newest audit event)."""
    before = len(audit_events(provider))
    with provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        changed = change_status(provider, session, user, status, context=ADMIN)
        after = effective_status(user)
    events = [row.event for row in audit_events(provider)[before:]]
    return changed, after, events[-1] if events else None


def _in(provider: Provider, user_id: str, status: str) -> None:
    with provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        if status == "locked":
            change_status(provider, session, user, "locked", context=ADMIN)
        elif status == "disabled":
            change_status(provider, session, user, "disabled", context=ADMIN)


@pytest.mark.parametrize(
    ("current", "wanted", "outcome"),
    [
        ("active", "active", (False, "active", None)),
        ("active", "locked", (True, "locked", "user.locked")),
        ("active", "disabled", (True, "disabled", "user.disabled")),
        ("locked", "active", (True, "active", "user.unlocked")),  # as unlock: failures forgotten
        ("locked", "locked", (False, "locked", None)),
        ("locked", "disabled", (True, "disabled", "user.disabled")),
        ("disabled", "active", (True, "active", "user.enabled")),
        ("disabled", "disabled", (False, "disabled", None)),
    ],
)
def test_every_status_change_has_one_outcome(
    cheap_passwords: Provider, tenant: str, current: str, wanted: str, outcome: tuple[object, ...]
) -> None:
    user = add_user(cheap_passwords, tenant)
    _in(cheap_passwords, user.id, current)
    assert _set(cheap_passwords, user.id, wanted) == outcome


def test_a_disabled_user_cannot_be_locked(cheap_passwords: Provider, tenant: str) -> None:
    """A timed lock ends in "active": it must never re-enable a disabled user."""
    user = add_user(cheap_passwords, tenant)
    _in(cheap_passwords, user.id, "disabled")
    with pytest.raises(AdminError) as refused:
        _set(cheap_passwords, user.id, "locked")
    assert refused.value.code == "invalid"


def test_disabling_ends_every_session(cheap_passwords: Provider, tenant: str) -> None:
    user = add_user(cheap_passwords, tenant)
    _set(cheap_passwords, user.id, "disabled")
    with cheap_passwords.database.session(readonly=True) as session:
        claims = {"tenant": tenant, "sub": user.id, "iat": int(time.time()) - 1, "jti": "x"}
        assert cheap_passwords.revocations.is_revoked(session, claims)
