"""Browser sessions at the provider: what makes single sign-on single. A person who signed in
once has a server-side row, found by the keyed hash of an opaque cookie; any client's next
authorization request completes without a new sign-in while the row lives.

A session ends when it is logged out (or every session of its user is), when it has been idle
``session_idle_ttl`` seconds, or ``session_ttl`` seconds after the sign-in, whatever the use.
Every sign-in makes a new row and a new cookie value: a session id planted before sign-in
(fixation) is never the one that signs in. The row's ``id`` is the public ``sid`` of ID tokens.

>>> cookie_name("https://id.example"), cookie_name("http://127.0.0.1:8000")
('__Host-tessera_session', 'tessera_session')
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ClauseElement, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..config import Settings
from ..store import prepared
from ..store.database import Database
from ..store.models import BrowserSession, SessionClient, User
from .secrets import MasterKey, new_secret

PURPOSE = "browser-session"
# What we mint is 43 characters; a longer cookie is no session of ours, and is not hashed.
MAX_COOKIE_LENGTH = 128
# A session's last use is written at most this often: a busy SSO hop does not write every time.
TOUCH_EVERY = 60
_SESSIONS = cast(Table, BrowserSession.__table__)
_BY_HASH = select(_SESSIONS).where(_SESSIONS.c.token_hash == bindparam("digest"))
_SESSION_CLIENTS = cast(Table, SessionClient.__table__)
_JOIN_SQLITE = sqlite_insert(_SESSION_CLIENTS).on_conflict_do_nothing()
_JOIN_POSTGRESQL = postgresql_insert(_SESSION_CLIENTS).on_conflict_do_nothing()
_TOUCH = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("id"))
    .values(last_seen_at=bindparam("last_seen_at"))
)


def cookie_name(issuer: str) -> str:
    """``__Host-`` prefixed when the issuer is https: the browser then only keeps the cookie if
    it is Secure, for the whole host, from that host (no subdomain can plant one)."""
    return "__Host-tessera_session" if issuer.startswith("https://") else "tessera_session"


@dataclass(frozen=True, slots=True)
class Started:
    """A new session: its row and the cookie value (in clear, for the browser only)."""

    row: BrowserSession
    cookie: str


class BrowserSessions:
    """Starts, finds and ends browser sessions."""

    def __init__(self, master: MasterKey, database: Database, settings: Settings) -> None:
        self._master = master
        self._database = database
        self._idle = settings.session_idle_ttl
        self._ttl = settings.session_ttl

    def start(
        self,
        session: Session,
        user: User,
        *,
        amr: tuple[str, ...],
        acr: str = "",
        now: int,
    ) -> Started:
        """A session for ``user``, who signed in at ``now`` with ``amr``."""
        cookie = new_secret()
        row = BrowserSession(
            id=str(uuid.uuid4()),
            token_hash=self._master.keyed_hash(PURPOSE, cookie),
            tenant_id=user.tenant_id,
            user_id=user.id,
            auth_time=now,
            amr=" ".join(amr),
            acr=acr,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self._ttl,
            ended_at=None,
        )
        session.add(row)
        session.flush()
        return Started(row, cookie)

    def digest(self, cookie: str | None) -> str | None:
        """The keyed hash the session ``cookie`` names is stored under (``None``: no cookie,
        or none of ours)."""
        if not cookie or len(cookie) > MAX_COOKIE_LENGTH:
            return None
        return self._master.keyed_hash(PURPOSE, cookie)

    def current(self, session: Session, cookie: str | None, *, now: int) -> BrowserSession | None:
        """The live session ``cookie`` names (its last use noted), or ``None``."""
        digest = self.digest(cookie)
        if digest is None:
            return None
        found = self._database.first(_BY_HASH, {"digest": digest})
        if found is None:
            return None
        # A plain object, not in the session: it is read on every SSO hop (a prepared read,
        # outside the session's transaction), and written (by :meth:`end` and the touch
        # below) with one UPDATE each.
        row = prepared.detached(BrowserSession, found)
        if not self.alive(row, now):
            return None
        if touch_due(row, now):
            _set(session, row, last_seen_at=now)
        return row

    def alive(self, row: BrowserSession, now: int) -> bool:
        """Whether ``row`` is neither ended, past its lifetime, nor idle too long."""
        return row.ended_at is None and now < row.expires_at and now < row.last_seen_at + self._idle

    def joined(self, session: Session, row: BrowserSession, client_id: str, *, now: int) -> None:
        """Note that ``client_id`` took part in the session ``row`` (its logout will tell the
        client): one statement, a no-op when it is noted already."""
        dialect = session.get_bind().dialect.name
        prepared.run(session, *joining(row, client_id, now=now, dialect=dialect))

    def end(self, session: Session, row: BrowserSession, *, now: int) -> None:
        """Log this session out."""
        if row.ended_at is None:
            _set(session, row, ended_at=now)

    def end_all(self, session: Session, user_id: str, *, now: int) -> list[BrowserSession]:
        """Log out every live session of ``user_id``; returns them."""
        rows = list(
            session.scalars(
                select(BrowserSession).where(
                    BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None)
                )
            )
        )
        for row in rows:
            row.ended_at = now
        session.flush()
        return rows


def touch_due(row: BrowserSession, now: int) -> bool:
    """Whether a use of ``row`` at ``now`` is to be written (at most every ``TOUCH_EVERY``
    seconds)."""
    return now - row.last_seen_at >= TOUCH_EVERY


def touching(row: BrowserSession, *, now: int) -> tuple[ClauseElement, dict[str, Any]]:
    """The statement that notes a use of ``row`` at ``now`` (``Database.write_all``)."""
    return _TOUCH, {"id": row.id, "last_seen_at": now}


def joining(
    row: BrowserSession, client_id: str, *, now: int, dialect: str
) -> tuple[ClauseElement, dict[str, Any]]:
    """The statement that notes ``client_id`` in the session ``row`` (a no-op when it is
    noted already), for the database whose dialect is named ``dialect``."""
    return _JOIN_POSTGRESQL if dialect == "postgresql" else _JOIN_SQLITE, {
        "session_id": row.id,
        "client_id": client_id,
        "first_at": now,
    }


def _set(session: Session, row: BrowserSession, **values: int) -> None:
    """Write ``values`` to ``row``'s columns with one UPDATE, and show them on the object
    (whether or not it is in the session) without marking it for another write."""
    session.connection().execute(update(_SESSIONS).where(_SESSIONS.c.id == row.id).values(**values))
    for name, value in values.items():
        set_committed_value(row, name, value)
