"""Revocation: the access-token blocklist and per-subject not-before ("log out everywhere").

The database is the truth; when a fan-out (Redis) is configured, every entry is also published
there once the transaction has committed, so every guard learns of it at once — and what could
not be published then is published again from the database (``Fanout.repair``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import ColumnElement, bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera import jose

from ..store.database import Database, after_commit
from ..store.models import RevokedToken, SubjectNotBefore

# A not-before must outlive every token issued before it: the longest access-token lifetime.
_NOT_BEFORE_KEEP = 3600 + 300


class Fanout(Protocol):
    """Where revocations are published beyond the database (Redis, for the guards)."""

    def revoke_jti(self, jti: str, expires_at: int) -> None:
        """Publish that the access token ``jti`` is revoked until ``expires_at``."""

    def not_before(self, tenant_id: str, subject: str, not_before: int, expires_at: int) -> None:
        """Publish that tokens of ``subject`` issued before ``not_before`` are revoked."""

    def repair(self, database: Database, *, now: float | None = None) -> int | None:
        """Write what is owed (or everything, when due) from ``database``; how many entries
        were written, ``None`` when nothing was."""

    def owed_for(self, *, now: float | None = None) -> float:
        """Seconds the oldest revocation not yet published has waited (0.0: none)."""

    @property
    def failures(self) -> int:
        """Publications that failed since this process started."""

    def close(self) -> None:
        """Release the connection."""


class Revocations:
    """Writes and answers revocations."""

    def __init__(self, fanout: Fanout | None = None) -> None:
        self.fanout = fanout

    def revoke_access_token(self, session: Session, claims: dict[str, Any]) -> None:
        """Put an access token's ``jti`` on the blocklist until its ``exp``.

        ``claims`` come from ``TokenIssuer.verifier()``: ``jti`` and ``tenant`` are strings,
        ``exp`` a NumericDate (a float rounds up, so the entry never ends before the token)."""
        jti, expires_at = claims["jti"], math.ceil(claims["exp"])
        if session.get(RevokedToken, jti) is None:
            try:  # two revocations of one token at once race to insert: either one revokes it
                with session.begin_nested():
                    session.add(
                        RevokedToken(jti=jti, tenant_id=claims["tenant"], expires_at=expires_at)
                    )
            except IntegrityError:
                pass
        if self.fanout is not None:
            fanout = self.fanout
            after_commit(session, lambda: fanout.revoke_jti(jti, expires_at))

    def log_out_everywhere(self, session: Session, tenant_id: str, subject: str, now: int) -> None:
        """Refuse every token of ``subject`` issued up to ``now``.

        ``iat`` has whole seconds, so a token of this very second may predate the logout: the
        line is drawn at ``now + 1`` (a token is refused when ``iat < not_before``, here and at
        every guard).
        """
        not_before = now + 1
        expires_at = now + _NOT_BEFORE_KEEP
        key = (tenant_id, subject)
        row = session.get(SubjectNotBefore, key, with_for_update=True)
        if row is None:
            try:  # two logouts of one subject at once race to insert: the loser updates instead
                with session.begin_nested():
                    row = SubjectNotBefore(
                        tenant_id=tenant_id,
                        subject=subject,
                        not_before=not_before,
                        expires_at=expires_at,
                    )
                    session.add(row)
            except IntegrityError:
                row = session.get(
                    SubjectNotBefore, key, with_for_update=True, populate_existing=True
                )
                assert row is not None
        row.not_before = max(row.not_before, not_before)
        row.expires_at = max(row.expires_at, expires_at)
        session.flush()
        if self.fanout is not None:  # publish what is stored: a not-before never moves back
            fanout, stored, until = self.fanout, row.not_before, row.expires_at
            after_commit(session, lambda: fanout.not_before(tenant_id, subject, stored, until))

    def is_revoked(self, session: Session, claims: Mapping[str, Any]) -> bool:
        """Whether a verified access token has been revoked (by ``jti`` or by not-before).

        Any claims may come here (the admin guard passes what its policy verified), so each is
        read for what it must be: a ``jti``, ``tenant`` or ``sub`` that is not a string names
        nothing that can be revoked, and a token without a NumericDate ``iat`` cannot show it
        came after a logout, so a not-before refuses it."""
        jti = claims.get("jti")
        if type(jti) is str and session.get(RevokedToken, jti) is not None:
            return True
        tenant_id, subject = claims.get("tenant"), claims.get("sub")
        if type(tenant_id) is not str or type(subject) is not str:
            return False
        not_before = session.scalar(
            select(SubjectNotBefore.not_before).where(
                SubjectNotBefore.tenant_id == tenant_id, SubjectNotBefore.subject == subject
            )
        )
        return revoked_by(claims, listed=False, not_before=not_before)


def revoked_by(claims: Mapping[str, Any], *, listed: bool, not_before: int | None) -> bool:
    """Whether a token with ``claims`` is revoked, its ``jti`` being ``listed`` on the
    blocklist (or not) and its subject's not-before being ``not_before`` (or none).

    >>> revoked_by({"iat": 100}, listed=False, not_before=101)
    True
    >>> revoked_by({"iat": 101}, listed=False, not_before=101)
    False
    """
    if listed:
        return True
    if not_before is None:
        return False
    iat = claims.get("iat")
    return not jose.claims.is_numeric_date(iat) or iat < not_before


def revocation_columns() -> tuple[ColumnElement[bool], ColumnElement[int | None]]:
    """Two columns to read beside a row, for :func:`revoked_by` in the same statement: whether
    the ``:jti`` parameter is on the blocklist, and the not-before of ``:tenant``/``:sub``."""
    listed = exists().where(RevokedToken.jti == bindparam("jti")).label("listed")
    not_before = (
        select(SubjectNotBefore.not_before)
        .where(
            SubjectNotBefore.tenant_id == bindparam("tenant"),
            SubjectNotBefore.subject == bindparam("sub"),
        )
        .scalar_subquery()
        .label("not_before")
    )
    return listed, not_before
