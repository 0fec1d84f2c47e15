"""Brute-force defence: growing delays and a temporary lock per account, a throttle per client
address, counted in a :mod:`~tessera.idp.cache.throttle` store (the database, or Redis): every
node counts together.

An account is a tenant and a normalised username whether or not such a user exists, so an
unknown name is throttled exactly like a known one (no enumeration). Counter keys are keyed
hashes: usernames (where people sometimes type their password) and addresses are never stored
in clear. A refused attempt does no password work and counts nothing.

>>> from tessera.idp.config import Settings
>>> from tessera.idp.services.secrets import MasterKey
>>> from tessera.idp.store.database import Database
>>> database = Database("sqlite://"); database.upgrade()
>>> lockout = Lockout(Settings(lockout_free_attempts=1), MasterKey(bytes(32)))
>>> with database.session() as session:
...     for moment in (0.0, 0.0):
...         lockout.failed(
...             session, tenant_id="acme", username="ada", ip="192.0.2.1", user=None,
...             context=None, now=moment,
...         )
>>> with database.session() as session:  # 2 ** (2 - 1) s after the last failure
...     lockout.check(session, "acme", " ADA", "192.0.2.1", now=1.5)
Traceback (most recent call last):
...
tessera.idp.errors.Throttled: invalid_grant: too many failed attempts; try again later
>>> with database.session() as session:
...     lockout.check(session, "acme", "ada", "192.0.2.1", now=2.0)
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..cache.throttle import Counter, DatabaseStore, Policy, RedisStore, ThrottleStore
from ..config import Settings
from ..errors import Throttled
from ..store.models import User
from .accounts import effective_status, normalise_username, set_status
from .audit import Context, record
from .secrets import MasterKey

log = logging.getLogger("tessera.idp")

PURPOSE = "throttle"


def client_network(ip: str) -> str:
    """What a client address is throttled under: an IPv4 address as it is, an IPv6 one by its
    /64 (one host commonly holds a whole /64); anything else (a proxy's name) as it is.

    >>> client_network("2001:db8::1"), client_network("::ffff:192.0.2.7"), client_network("x")
    ('2001:db8::/64', '192.0.2.7', 'x')
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def open_store(settings: Settings) -> ThrottleStore:
    """Redis when ``redis_url`` is set, else the database (either way every node counts
    together)."""
    database = DatabaseStore()
    if settings.redis_url:
        return RedisStore(settings.redis_url, prefix=settings.throttle_prefix, fallback=database)
    return database


class Lockout:
    """Per-account growing delays and locks, per-address throttling (see the settings
    ``lockout_*``). Every method takes ``now`` (epoch seconds) for tests; the default is now."""

    def __init__(
        self, settings: Settings, master: MasterKey, store: ThrottleStore | None = None
    ) -> None:
        self.settings = settings
        self.store = store if store is not None else open_store(settings)
        self._master = master
        self._account = Policy(
            window=settings.lockout_window,
            threshold=settings.lockout_threshold,
            duration=settings.lockout_duration,
            free=settings.lockout_free_attempts,
            max_delay=settings.lockout_max_delay,
        )
        self._address = Policy(
            window=settings.lockout_window,
            threshold=settings.lockout_ip_threshold,
            duration=settings.lockout_duration,
            free=settings.lockout_ip_threshold,  # no delays: a shared address is not one person
            max_delay=settings.lockout_max_delay,
            clears_on_success=False,  # one good password must not clear a spray's failures
        )

    def check(
        self,
        session: Session,
        tenant_id: str,
        username: str,
        ip: str | None,
        *,
        now: float | None = None,
    ) -> None:
        """Refuse with :class:`~tessera.idp.errors.Throttled` (429) when the account or the
        address must wait or is locked; else admit the attempt, which the caller settles with
        :meth:`failed` or :meth:`succeeded`. (A user row's own lock is :meth:`admit`'s.)"""
        moment = time.time() if now is None else now
        refusal = self.store.attempt(session, self._counters(tenant_id, username, ip), moment)
        if refusal is not None:
            raise Throttled(refusal.wait, cause="account" if refusal.counter == 0 else "ip")

    def admit(
        self,
        session: Session,
        *,
        tenant_id: str,
        username: str,
        context: Context,
        client_id: str | None = None,
        via: str = "password",
        now: float | None = None,
    ) -> User | None:
        """Before any password work: the user row (``None`` for an unknown name) once
        :meth:`check` admits the attempt. A locked user is refused with the same 429 as a
        throttled account. A refusal is audited as ``login.throttled`` and committed before
        it is raised, so the caller's rollback keeps it. An admission is committed too: every
        node sees the attempt in flight, and no counter stays locked through the argon2id
        work that follows."""
        moment = time.time() if now is None else now
        user = session.scalar(
            select(User).where(
                User.tenant_id == tenant_id, User.username_key == normalise_username(username)
            )
        )
        try:
            # The counters first: while they hold the lock, a known user is told exactly what
            # an unknown one is (the row's end, rounded to whole seconds, could differ).
            self.check(session, tenant_id, username, context.ip, now=moment)
            if user is not None and effective_status(user, int(moment)) == "locked":
                self.settle(session, tenant_id, username, context.ip, now=moment)
                ends = user.locked_until
                wait = self.settings.lockout_duration if ends is None else ends - moment
                raise Throttled(wait, cause="locked")
        except Throttled as refusal:
            record(
                session,
                "login.throttled",
                tenant_id=tenant_id,
                outcome="failure",
                context=context,
                subject=user.id if user is not None else None,
                client_id=client_id,
                details={"grant": via, "cause": refusal.cause},
            )
            session.commit()
            raise
        session.commit()
        return user

    def failed(
        self,
        session: Session,
        *,
        tenant_id: str,
        username: str,
        ip: str | None,
        user: User | None,
        context: Context | None,
        now: float | None = None,
    ) -> None:
        """Count a failure (a wrong password or second-factor code) of the account and the
        address. At the account's threshold an active ``user`` is locked (audited
        ``user.locked``); a disabled one stays disabled."""
        moment = time.time() if now is None else now
        locked = self.store.fail(session, self._counters(tenant_id, username, ip), moment)
        if len(locked) > 1 and locked[1]:
            log.warning(
                "throttling client address %s for %d s after %d failures",
                ip,
                self.settings.lockout_duration,
                self.settings.lockout_ip_threshold,
            )
        if locked[0] and user is not None and effective_status(user, int(moment)) == "active":
            set_status(
                session,
                user,
                "locked",
                until=math.ceil(moment + self.settings.lockout_duration),
                reason="too-many-failures",
                context=context,
            )

    def succeeded(
        self,
        session: Session,
        tenant_id: str,
        username: str,
        ip: str | None,
        *,
        now: float | None = None,
    ) -> None:
        """The account logged in (every factor): its failures are forgotten. The address keeps
        its count (one good password must not hide a spray from it)."""
        moment = time.time() if now is None else now
        self.store.succeed(session, self._counters(tenant_id, username, ip), moment)

    def settle(
        self,
        session: Session,
        tenant_id: str,
        username: str,
        ip: str | None,
        *,
        now: float | None = None,
    ) -> None:
        """The password was right but another factor is due: the attempt is no longer in
        flight, and the account's failures stay until the login completes."""
        moment = time.time() if now is None else now
        self.store.succeed(session, self._counters(tenant_id, username, ip, clears=False), moment)

    def unlock(
        self, session: Session, user: User, *, context: Context | None, now: float | None = None
    ) -> None:
        """An admin's unlock: forget the account's failures and end the user's lock, whichever
        of the two is set. Always one audit row, ``user.unlocked`` (a disabled user stays
        disabled)."""
        moment = time.time() if now is None else now
        cleared = self.store.clear(
            session, self._counters(user.tenant_id, user.username, None), moment
        )
        status = effective_status(user, int(moment))
        if status == "locked":
            set_status(session, user, "active", reason="admin", context=context)
            return
        record(
            session,
            "user.unlocked",
            tenant_id=user.tenant_id,
            context=context,
            subject=user.id,
            details={"reason": "admin", "status": status, "failures_cleared": cleared},
        )

    def close(self) -> None:
        """Release the store's connection, if any."""
        self.store.close()

    def _counters(
        self, tenant_id: str, username: str, ip: str | None, *, clears: bool = True
    ) -> list[Counter]:
        account = self._hash(f"account\x00{tenant_id}\x00{normalise_username(username)}")
        policy = self._account if clears else replace(self._account, clears_on_success=False)
        counters = [Counter("a:" + account, policy)]
        if ip:
            counters.append(
                Counter("i:" + self._hash("ip\x00" + client_network(ip)), self._address)
            )
        return counters

    def _hash(self, value: str) -> str:
        return self._master.keyed_hash(PURPOSE, value)[:32]
