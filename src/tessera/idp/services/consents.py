"""Consent: what a user allowed a third-party client to receive, asked once per (user, client,
scopes) and remembered until revoked. First-party clients are the organisation's own and never
ask; asking again is needed only for a scope not allowed before (or ``prompt=consent``).

>>> needs_asking(("openid", "email"), "openid profile email")
False
>>> needs_asking(("openid", "offline_access"), "openid profile")
True
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..store.models import Consent


def needs_asking(scopes: tuple[str, ...], remembered: str | None) -> bool:
    """Whether ``scopes`` go beyond what was ``remembered`` (space-separated, or nothing)."""
    return remembered is None or not set(scopes) <= set(remembered.split())


def remembered(session: Session, user_id: str, client_id: str) -> str | None:
    """The scopes ``user_id`` allowed ``client_id``, space-separated; ``None`` if never asked."""
    consent = session.get(Consent, (user_id, client_id))
    return None if consent is None else consent.scope


def remember(
    session: Session,
    *,
    tenant_id: str,
    user_id: str,
    client_id: str,
    scopes: tuple[str, ...],
    now: int,
) -> None:
    """Add ``scopes`` to what ``user_id`` allowed ``client_id``."""
    consent = session.get(Consent, (user_id, client_id))
    if consent is None:
        session.add(
            Consent(
                user_id=user_id,
                client_id=client_id,
                tenant_id=tenant_id,
                scope=" ".join(dict.fromkeys(scopes)),
                granted_at=now,
            )
        )
    else:
        consent.scope = " ".join(dict.fromkeys((*consent.scope.split(), *scopes)))
        consent.granted_at = now
    session.flush()


def consents_of(session: Session, user_id: str) -> list[Consent]:
    """Every client ``user_id`` allowed something, by client id."""
    return list(
        session.scalars(
            select(Consent).where(Consent.user_id == user_id).order_by(Consent.client_id)
        )
    )


def forget(session: Session, user_id: str, client_id: str) -> bool:
    """Withdraw a consent; ``False`` if there was none. The next sign-in asks again."""
    removed = session.execute(
        delete(Consent)
        .where(Consent.user_id == user_id, Consent.client_id == client_id)
        .execution_options(synchronize_session=False)
    )
    return bool(removed.rowcount)  # type: ignore[attr-defined]
