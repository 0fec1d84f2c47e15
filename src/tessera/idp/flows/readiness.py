"""Readiness (``GET /readyz``): whether this node can serve — its database reachable and at the
schema this code expects, a signing key loaded, and Redis reachable when one is configured.
Liveness (``GET /healthz``) asks nothing of them: a node alive but not ready is taken out of the
balancer, not restarted.

>>> from tessera.idp.config import Settings
>>> from tessera.idp.provider import Provider
>>> provider = Provider(Settings(database_url="sqlite://", master_key="A" * 43))
>>> readiness(provider).checks["database"]
'migrations not at head: run `tessera db upgrade`'
>>> provider.start(); readiness(provider)
Readiness(checks={'database': 'ok', 'keys': 'ok'})
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from ..cache.throttle import RedisStore
from ..provider import Provider

OK = "ok"


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each check's outcome: ``"ok"``, or why not (safe to show: no address, no secret)."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        """Whether every check passed."""
        return all(outcome == OK for outcome in self.checks.values())


def readiness(provider: Provider) -> Readiness:
    """Run the checks now (one read of the schema version; a Redis PING when configured)."""
    checks: dict[str, str] = {}
    try:
        at_head = provider.database.at_head()
        checks["database"] = OK if at_head else "migrations not at head: run `tessera db upgrade`"
    except SQLAlchemyError:
        checks["database"] = "unreachable"
    checks["keys"] = OK if provider.keyring.signs_now() else "no signing key loaded"
    store = provider.lockout.store
    if isinstance(store, RedisStore):
        checks["redis"] = OK if store.reachable() else "unreachable"
    return Readiness(checks)
