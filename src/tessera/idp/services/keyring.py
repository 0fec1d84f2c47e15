"""Signing keys that rotate themselves, sealed at rest, published as JWKS.

A key's life: published (in JWKS, not signing yet) → active (signs) → retired (still in JWKS
until every token it signed has expired) → deleted. The next key is published ``key_prepublish``
seconds before it starts signing, so guards that cache JWKS already know it. With many nodes,
exactly one rotates: the decision is taken under a row lock (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's write lock serializes writers already).

Each algorithm has a timeline of its own. The configured ``signing_alg`` (access tokens) has one
from the start; another (OpenID Connect requires RS256 for ID tokens) gets its first key the
first time something is signed with it, and from then on rotates like the first.

>>> from tessera.idp.config import Settings
>>> from tessera.idp.store.database import Database
>>> from tessera.idp.services.secrets import MasterKey
>>> database = Database("sqlite://"); database.upgrade()
>>> keyring = Keyring(database, MasterKey(bytes(32)), Settings(database_url="sqlite://"))
>>> keyring.signing_key(now=1_700_000_000).alg
'ES256'
>>> len(keyring.jwks(now=1_700_000_000)["keys"])
1
>>> keyring.signing_key(now=1_700_000_000, alg="RS256").alg
'RS256'
>>> sorted(key["alg"] for key in keyring.jwks(now=1_700_000_000)["keys"])
['ES256', 'RS256']
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera import jose

from ..config import SIGNING_ALGS, Settings
from ..store.database import Database, after_commit
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
    active: dict[str, jose.Key]  # by algorithm


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

    def signing_key(
        self, now: float | None = None, *, alg: str | None = None, session: Session | None = None
    ) -> jose.Key:
        """The private key that signs with ``alg`` (default: ``signing_alg``) at ``now``.

        The first key of an algorithm not used before is made on the way: in ``session`` when
        the caller is inside a transaction (it is published when that commits, before the
        caller answers with what it signed), else in a transaction of its own.
        """
        wanted = alg or self._settings.signing_alg
        key = self._current(now).active.get(wanted)
        if key is not None:
            return key
        if wanted not in SIGNING_ALGS:
            raise ValueError(f"no signing keys for {wanted}")
        moment = time.time() if now is None else now
        if session is not None:
            return self._start_timeline(session, wanted, int(moment))
        self.ensure(moment, alg=wanted)
        self._view = None
        return self._current(moment).active[wanted]

    def can_sign(self, alg: str, now: float | None = None) -> bool:
        """Whether a key signs with ``alg`` at ``now`` already (:meth:`signing_key` would not
        have to make one)."""
        return alg in self._current(now).active

    def _start_timeline(self, session: Session, alg: str, now: int) -> jose.Key:
        """The first key of ``alg``, made in the caller's transaction (or found, when another
        node made it first); every node reads it once the transaction commits."""
        self._lock_rotation(session)
        after_commit(session, self.reload)
        found = session.scalars(
            select(SigningKey).where(
                SigningKey.alg == alg, SigningKey.activates_at <= now, SigningKey.retires_at > now
            )
        ).first()
        if found is not None:
            with self._lock:
                return self._private_key(_stored(found))
        key = self._create(session, alg, now, activates_at=now)
        first = {"kid": key.kid, "alg": alg, "reason": "first use"}
        record(session, "key.created", tenant_id="*", context=None, details=first)
        return key

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
            stored = tuple(_stored(row) for row in rows)
        with self._lock:
            self._stored = stored
            self._view = None
            kids = {item.info.kid for item in stored}
            self._private = {kid: key for kid, key in self._private.items() if kid in kids}

    def signs_now(self, now: float | None = None) -> bool:
        """Whether a key of ``signing_alg`` is loaded and signing at ``now``; nothing is read
        again, made or written (what readiness asks).

        >>> from tessera.idp.config import Settings
        >>> from tessera.idp.provider import Provider
        >>> provider = Provider(Settings(database_url="sqlite://", master_key="A" * 43))
        >>> provider.keyring.signs_now()
        False
        >>> provider.start(); provider.keyring.signs_now()
        True
        """
        moment = time.time() if now is None else now
        view = self._view
        if view is None or not view.start <= moment < view.until:
            if self._stored is None:
                return False
            view = self._compute(moment)
        return view is not None and self._settings.signing_alg in view.active

    def _current(self, now: float | None) -> _View:
        moment = time.time() if now is None else now
        view = self._view
        if view is not None and view.start <= moment < view.until:
            return view
        if self._stored is None:
            self.reload()
        view = self._compute(moment)
        if view is None:
            # A timeline has no signing key (first use, or an outage longer than a rotation
            # period).
            self.ensure(moment)
            view = self._compute(moment)
            assert view is not None
        self._view = view
        return view

    def _compute(self, now: float) -> _View | None:
        """The view at ``now``; ``None`` when a timeline that has keys (or ``signing_alg``'s)
        has none signing at ``now``."""
        with self._lock:
            stored = self._stored or ()
            active: dict[str, jose.Key] = {}
            for alg in _timelines(self._settings.signing_alg, (item.info.alg for item in stored)):
                current = next(
                    (
                        item
                        for item in stored
                        if item.info.alg == alg
                        and item.info.activates_at <= now < item.info.retires_at
                    ),
                    None,
                )
                if current is None:
                    return None
                active[alg] = self._private_key(current)
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
            return _View(start, until, jwks, jose.KeySet.from_jwks(jwks), active)

    def _private_key(self, stored: _StoredKey) -> jose.Key:
        key = self._private.get(stored.info.kid)
        if key is None:
            private = self._master.unseal(stored.sealed, aad=stored.info.kid.encode())
            key = jose.Key.from_der(private, alg=stored.info.alg, kid=stored.info.kid)
            self._private[stored.info.kid] = key
        return key

    # ------------------------------------------------------------------ rotating

    def ensure(
        self, now: float | None = None, context: Context | None = None, *, alg: str | None = None
    ) -> list[str]:
        """On every timeline (``signing_alg``'s, each one with keys, and ``alg``'s): create the
        first key, publish the next one when due; then delete expired keys.

        Returns the kids created. Safe to call from every node at once.
        """
        moment = int(time.time() if now is None else now)
        with self._database.session() as session:
            self._lock_rotation(session)
            rows = list(session.scalars(select(SigningKey)))
            algs = _timelines(self._settings.signing_alg, (row.alg for row in rows))
            if alg is not None and alg not in algs:
                algs.append(alg)
            created: list[str] = []
            for timeline in algs:
                same = [row for row in rows if row.alg == timeline]
                kid = self._advance(session, timeline, same, moment, context)
                if kid is not None:
                    created.append(kid)
            session.execute(delete(SigningKey).where(SigningKey.expires_at <= moment))
        self.reload()  # this node publishes what changed at once, and sees other nodes' keys
        return created

    def _advance(
        self,
        session: Session,
        alg: str,
        rows: list[SigningKey],
        moment: int,
        context: Context | None,
    ) -> str | None:
        """One timeline's step: its first key, or its next one when due; the kid made."""
        active = [row for row in rows if row.activates_at <= moment < row.retires_at]
        if not active:
            kid = str(self._create(session, alg, moment, activates_at=moment).kid)
            first = {"kid": kid, "alg": alg, "reason": "no active key"}
            record(session, "key.created", tenant_id="*", context=context, details=first)
            return kid
        current = max(active, key=lambda row: row.activates_at)
        due = current.retires_at - self._settings.key_prepublish
        if moment < due or any(row.activates_at > moment for row in rows):
            return None
        kid = str(self._create(session, alg, moment, activates_at=current.retires_at).kid)
        rotated = {
            "kid": kid,
            "alg": alg,
            "previous": current.kid,
            "activates_at": current.retires_at,
        }
        record(session, "key.rotated", tenant_id="*", context=context, details=rotated)
        return kid

    def rotate(
        self, now: float | None = None, *, immediate: bool = False, context: Context | None = None
    ) -> str:
        """Force a rotation of every timeline: a new key each, published now, signing after the
        prepublication period. Returns the new kid of ``signing_alg``'s timeline.

        ``immediate`` (for a compromised key) makes them sign at once; guards that cached the
        old JWKS refetch on the unknown kid.
        """
        moment = int(time.time() if now is None else now)
        starts = moment if immediate else moment + self._settings.key_prepublish
        made: dict[str, str] = {}
        with self._database.session() as session:
            self._lock_rotation(session)
            rows = list(session.scalars(select(SigningKey)))
            for row in rows:
                if row.activates_at > moment:
                    session.delete(row)  # an unused next key is replaced by this one
                elif row.retires_at > starts:
                    row.retires_at = starts
                    row.expires_at = starts + _TOKEN_LIFETIME_CAP
            for alg in _timelines(self._settings.signing_alg, (row.alg for row in rows)):
                made[alg] = kid = str(self._create(session, alg, moment, activates_at=starts).kid)
                record(
                    session,
                    "key.rotated",
                    tenant_id="*",
                    context=context,
                    details={"kid": kid, "alg": alg, "forced": True, "immediate": immediate},
                )
        self.reload()
        return made[self._settings.signing_alg]

    def _lock_rotation(self, session: Session) -> None:
        if session.get(Lock, "keyring", with_for_update=True) is not None:
            return
        try:  # the first rotation ever: nodes starting together race to create the lock row
            with session.begin_nested():
                session.add(Lock(name="keyring", held_at=int(time.time())))
        except IntegrityError:
            pass  # another node made it first; wait for its lock below
        session.get(Lock, "keyring", with_for_update=True)

    def _create(self, session: Session, alg: str, now: int, *, activates_at: int) -> jose.Key:
        key = jose.Key.generate(alg)
        assert key.kid is not None
        retires_at = activates_at + self._settings.key_rotation_period
        session.add(
            SigningKey(
                kid=key.kid,
                alg=alg,
                public_jwk=orjson.dumps({**key.public().to_jwk(), "use": "sig"}).decode(),
                private_sealed=self._master.seal(key.to_der(private=True), aad=key.kid.encode()),
                published_at=now,
                activates_at=activates_at,
                retires_at=retires_at,
                expires_at=retires_at + _TOKEN_LIFETIME_CAP,
            )
        )
        session.flush()
        return key


def _timelines(signing_alg: str, key_algs: Iterable[str]) -> list[str]:
    """The algorithms with a timeline: ``signing_alg`` first, then each one that has keys."""
    return list(dict.fromkeys([signing_alg, *key_algs]))


def _stored(row: SigningKey) -> _StoredKey:
    return _StoredKey(_info(row), orjson.loads(row.public_jwk), row.private_sealed)


def _info(row: SigningKey) -> KeyInfo:
    return KeyInfo(
        row.kid, row.alg, row.published_at, row.activates_at, row.retires_at, row.expires_at
    )
