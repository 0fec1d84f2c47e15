"""Revocation: the access-token blocklist and per-subject not-before ("log out everywhere").

The database is the truth; when a fan-out (Redis) is configured, every entry is also published
there once the transaction has committed, so every guard learns of it at once.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..store.database import after_commit
from ..store.models import RevokedToken, SubjectNotBefore

# A not-before must outlive every token issued before it: the longest access-token lifetime.
_NOT_BEFORE_KEEP = 3600 + 300


class Fanout(Protocol):
    """Where revocations are published beyond the database (Redis, for the guards)."""

    def revoke_jti(self, jti: str, expires_at: int) -> None:
        """Publish that the access token ``jti`` is revoked until ``expires_at``."""

    def not_before(self, tenant_id: str, subject: str, not_before: int, expires_at: int) -> None:
        """Publish that tokens of ``subject`` issued before ``not_before`` are revoked."""


class Revocations:
    """Writes and answers revocations."""

    def __init__(self, fanout: Fanout | None = None) -> None:
        self.fanout = fanout

    def revoke_access_token(self, session: Session, claims: dict[str, Any]) -> None:
        """Put an access token's ``jti`` on the blocklist until its ``exp``."""
        jti, expires_at = str(claims["jti"]), int(claims["exp"])
        if session.get(RevokedToken, jti) is None:
            session.add(
                RevokedToken(
                    jti=jti, tenant_id=str(claims.get("tenant", "")), expires_at=expires_at
                )
            )
            session.flush()
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

    def is_revoked(self, session: Session, claims: dict[str, Any]) -> bool:
        """Whether a verified access token has been revoked (by ``jti`` or by not-before)."""
        if session.get(RevokedToken, str(claims.get("jti", ""))) is not None:
            return True
        not_before = session.scalar(
            select(SubjectNotBefore.not_before).where(
                SubjectNotBefore.tenant_id == str(claims.get("tenant", "")),
                SubjectNotBefore.subject == str(claims.get("sub", "")),
            )
        )
        return not_before is not None and int(claims.get("iat", 0)) < not_before
