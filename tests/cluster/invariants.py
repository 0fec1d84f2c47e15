"""What must hold in the database after any fault: no refresh rotation lost or duplicated, no
token without its family, an audit row for every token a client was given."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from sqlalchemy import func, select

from tessera.idp.store.database import Database
from tessera.idp.store.models import AuditEvent, RefreshFamily, RefreshToken

from .cluster import Cluster


@contextmanager
def database(cluster: Cluster) -> Iterator[Database]:
    handle = Database(cluster.prepared.settings["TESSERA_DATABASE_URL"])
    try:
        yield handle
    finally:
        handle.engine.dispose()


def audited_jtis(cluster: Cluster) -> set[str]:
    """The jti of every token the audit log says was issued or refreshed."""
    with database(cluster) as handle, handle.session(readonly=True) as session:
        details = session.scalars(
            select(AuditEvent.details).where(
                AuditEvent.event.in_(("token.issued", "token.refreshed"))
            )
        )
        return {str(orjson.loads(text)["jti"]) for text in details if text}


def check_families(cluster: Cluster) -> Counter[str]:
    """Every family is revoked or has exactly one live token (none lost, none duplicated), and
    no token is without its family; how many families are in each state."""
    states: Counter[str] = Counter()
    with database(cluster) as handle, handle.session(readonly=True) as session:
        live = dict(
            session.execute(
                select(RefreshToken.family_id, func.count())
                .where(RefreshToken.spent_at.is_(None))
                .group_by(RefreshToken.family_id)
            ).all()
        )
        for family_id, revoked_at in session.execute(
            select(RefreshFamily.id, RefreshFamily.revoked_at)
        ):
            if revoked_at is not None:
                states["revoked"] += 1
            else:
                assert live.get(family_id) == 1, f"family {family_id}: {live.get(family_id)} live"
                states["live"] += 1
        orphans = session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(~RefreshToken.family_id.in_(select(RefreshFamily.id)))
        )
        assert orphans == 0
    return states
