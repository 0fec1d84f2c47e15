"""Signing keys that rotate themselves, sealed at rest, published as JWKS.

A key's life: published (in JWKS, not signing yet) → active (signs) → retired (still in JWKS
until every token it signed has expired) → deleted. The next key is published ``key_prepublish``
seconds before it starts signing, so guards that cache JWKS already know it. With many nodes,
exactly one rotates: the decision is taken under a row lock (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's write lock serializes writers already).

>>> from tessera.idp.config import Settings
>>> from tessera.idp.store.database import Database
>>> from tessera.idp.services.secrets import MasterKey
>>> database = Database("sqlite://"); database.upgrade()
>>> keyring = Keyring(database, MasterKey(bytes(32)), Settings(database_url="sqlite://"))
>>> keyring.signing_key(now=1_700_000_000).alg
'ES256'
>>> len(keyring.jwks(now=1_700_000_000)["keys"])
1
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera import jose

from ..config import Settings
from ..store.database import Database
from ..store.models import Lock, SigningKey
from .audit import Context, record
from .secrets import MasterKey

# Tokens live at most this long (the access-token lifetime is capped at one hour), plus leeway:
# a retired key stays published that long after it stopped signing.
_TOKEN_LIFETIME_CAP = 3600 + 300


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What is known about one signing key, without its private part."""

    kid: str
    alg: str
    published_at: int
    activates_at: int
    retires_at: int
    expires_at: int

    def state(self, now: float) -> str:
        """``next``, ``active``, ``retired`` or ``expired`` at ``now``."""
        if now < self.activates_at:
            return "next"
        if now < self.retires_at:
            return "active"
        return "retired" if now < self.expires_at else "expired"


@dataclass(frozen=True, slots=True)
class _StoredKey:
    info: KeyInfo
    public_jwk: dict[str, Any]
    sealed: bytes


@dataclass(frozen=True, slots=True)
class _View:
    """What holds between two key-timeline boundaries: the signing key and the JWK Set."""

    start: float
    until: float
    jwks: dict[str, Any]
    key_set: jose.KeySet
    active: jose.Key


class Keyring:
    """The provider's signing keys: which signs now, which are published, when to rotate.

    Requests never touch the database for keys: they read an in-memory copy of the key table,
    from which the key that signs at any moment (and the JWK Set) follows. The copy is reloaded
    after every local change and by the housekeeping loop (``reload``), so another node's
    rotation is seen within one loop — long before the prepublished key starts signing.
    """

    def __init__(self, database: Database, master: MasterKey, settings: Settings) -> None:
        self._database = database
        self._master = master
        self._settings = settings
        self._lock = threading.Lock()
        self._stored: tuple[_StoredKey, ...] | None = None
        self._view: _View | None = None
        self._private: dict[str, jose.Key] = {}

    # ------------------------------------------------------------------ reading

    def signing_key(self, now: float | None = None) -> jose.Key:
        """The private key that signs at ``now``."""
        return self._current(now).active

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """The JWK Set to publish at ``now``: next, active and still-needed retired keys.

        The same dict object is returned until the set changes, so callers may cache on it.
        """
        return self._current(now).jwks

    def key_set(self, now: float | None = None) -> jose.KeySet:
        """The published keys at ``now`` as a ``KeySet`` to verify with: the same object until
        the set changes, so a verifier built on it may be kept as long as it is returned."""
        return self._current(now).key_set

    def keys(self, now: float | None = None) -> list[KeyInfo]:
        """Every stored key with its timeline, newest first."""
        self._current(now)
        return [stored.info for stored in self._stored or ()]

    def reload(self) -> None:
        """Read the key table again (its own short read transaction)."""
        with self._database.session(readonly=True) as session:
            rows = session.scalars(select(SigningKey).order_by(SigningKey.activates_at.desc()))
            stored = tuple(
                _StoredKey(_info(row), orjson.loads(row.public_jwk), row.private_sealed)
                for row in rows
            )
        with self._lock:
            self._stored = stored
            self._view = None
            kids = {item.info.kid for item in stored}
            self._private = {kid: key for kid, key in self._private.items() if kid in kids}

    def _current(self, now: float | None) -> _View:
        moment = time.time() if now is None else now
        view = self._view
        if view is not None and view.start <= moment < view.until:
            return view
        if self._stored is None:
            self.reload()
        view = self._compute(moment)
        if view is None:
            # No key signs at all (first use, or an outage longer than a rotation period).
            self.ensure(moment)
            view = self._compute(moment)
            assert view is not None
        self._view = view
        return view

    def _compute(self, now: float) -> _View | None:
        with self._lock:
            stored = self._stored or ()
            active = next(
                (item for item in stored if item.info.activates_at <= now < item.info.retires_at),
                None,
            )
            if active is None:
                return None
            key = self._private.get(active.info.kid)
            if key is None:
                private = self._master.unseal(active.sealed, aad=active.info.kid.encode())
                key = jose.Key.from_der(private, alg=active.info.alg, kid=active.info.kid)
                self._private[active.info.kid] = key
            moments = [
                moment
                for item in stored
                for moment in (
                    item.info.published_at,
                    item.info.activates_at,
                    item.info.retires_at,
                    item.info.expires_at,
                )
            ]
            start = max([moment for moment in moments if moment <= now], default=now)
            until = min([moment for moment in moments if moment > now], default=float("inf"))
            published = [
                item.public_jwk
                for item in stored
                if item.info.published_at <= now < item.info.expires_at
            ]
            jwks = {"keys": published}
            return _View(start, until, jwks, jose.KeySet.from_jwks(jwks), key)

    # ------------------------------------------------------------------ rotating

    def ensure(self, now: float | None = None, context: Context | None = None) -> list[str]:
        """Create the first key, publish the next one when due, delete expired ones.

        Returns the kids created. Safe to call from every node at once.
        """
        moment = int(time.time() if now is None else now)
        with self._database.session() as session:
            self._lock_rotation(session)
            rows = list(session.scalars(select(SigningKey)))
            created: list[str] = []
            active = [row for row in rows if row.activates_at <= moment < row.retires_at]
            upcoming = [row for row in rows if row.activates_at > moment]
            if not active:
                created.append(self._create(session, moment, activates_at=moment))
                record(
                    session,
                    "key.created",
                    tenant_id="*",
                    context=context,
                    details={"kid": created[-1], "reason": "no active key"},
                )
            else:
                current = max(active, key=lambda row: row.activates_at)
                due = current.retires_at - self._settings.key_prepublish
                if moment >= due and not upcoming:
                    kid = self._create(session, moment, activates_at=current.retires_at)
                    created.append(kid)
                    record(
                        session,
                        "key.rotated",
                        tenant_id="*",
                        context=context,
                        details={
                            "kid": kid,
                            "previous": current.kid,
                            "activates_at": current.retires_at,
                        },
                    )
            session.execute(delete(SigningKey).where(SigningKey.expires_at <= moment))
        self.reload()  # this node publishes what changed at once, and sees other nodes' keys
        return created

    def rotate(
        self, now: float | None = None, *, immediate: bool = False, context: Context | None = None
    ) -> str:
        """Force a rotation: a new key, published now, signing after the prepublication period.

        ``immediate`` (for a compromised key) makes it sign at once; guards that cached the old
        JWKS refetch on the unknown kid.
        """
        moment = int(time.time() if now is None else now)
        with self._database.session() as session:
            self._lock_rotation(session)
            rows = list(session.scalars(select(SigningKey)))
            starts = moment if immediate else moment + self._settings.key_prepublish
            for row in rows:
                if row.activates_at > moment:
                    session.delete(row)  # an unused next key is replaced by this one
                elif row.retires_at > starts:
                    row.retires_at = starts
                    row.expires_at = starts + _TOKEN_LIFETIME_CAP
            kid = self._create(session, moment, activates_at=starts)
            record(
                session,
                "key.rotated",
                tenant_id="*",
                context=context,
                details={"kid": kid, "forced": True, "immediate": immediate},
            )
        self.reload()
        return kid

    def _lock_rotation(self, session: Session) -> None:
        if session.get(Lock, "keyring", with_for_update=True) is not None:
            return
        try:  # the first rotation ever: nodes starting together race to create the lock row
            with session.begin_nested():
                session.add(Lock(name="keyring", held_at=int(time.time())))
        except IntegrityError:
            pass  # another node made it first; wait for its lock below
        session.get(Lock, "keyring", with_for_update=True)

    def _create(self, session: Session, now: int, *, activates_at: int) -> str:
        key = jose.Key.generate(self._settings.signing_alg)
        assert key.kid is not None
        retires_at = activates_at + self._settings.key_rotation_period
        session.add(
            SigningKey(
                kid=key.kid,
                alg=self._settings.signing_alg,
                public_jwk=orjson.dumps({**key.public().to_jwk(), "use": "sig"}).decode(),
                private_sealed=self._master.seal(key.to_der(private=True), aad=key.kid.encode()),
                published_at=now,
                activates_at=activates_at,
                retires_at=retires_at,
                expires_at=retires_at + _TOKEN_LIFETIME_CAP,
            )
        )
        session.flush()
        return key.kid


def _info(row: SigningKey) -> KeyInfo:
    return KeyInfo(
        row.kid, row.alg, row.published_at, row.activates_at, row.retires_at, row.expires_at
    )
