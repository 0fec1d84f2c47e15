"""Housekeeping: purge what can no longer matter, so tables do not grow without bound."""

from __future__ import annotations

import time

from sqlalchemy import delete, or_

from ..provider import Provider
from ..store.models import RefreshFamily, RefreshToken, RevokedToken, SubjectNotBefore

# A revoked family is kept this long so that reuse of its tokens is still recognised.
REVOKED_FAMILY_KEEP = 7 * 86_400


def purge(provider: Provider, now: float | None = None) -> dict[str, int]:
    """Delete expired refresh tokens and families, blocklist entries and not-befores.

    Returns how many rows of each kind went; rotates signing keys when due.
    """
    moment = int(time.time() if now is None else now)
    counts: dict[str, int] = {}
    with provider.database.session() as session:
        families = session.execute(
            delete(RefreshFamily).where(
                or_(
                    RefreshFamily.expires_at <= moment,
                    RefreshFamily.revoked_at <= moment - REVOKED_FAMILY_KEEP,
                )
            )
        )
        counts["refresh_families"] = families.rowcount  # type: ignore[attr-defined]
        tokens = session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= moment))
        counts["refresh_tokens"] = tokens.rowcount  # type: ignore[attr-defined]
        revoked = session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= moment))
        counts["revoked_tokens"] = revoked.rowcount  # type: ignore[attr-defined]
        not_before = session.execute(
            delete(SubjectNotBefore).where(SubjectNotBefore.expires_at <= moment)
        )
        counts["subject_not_before"] = not_before.rowcount  # type: ignore[attr-defined]
    provider.keyring.ensure(moment)
    return counts
