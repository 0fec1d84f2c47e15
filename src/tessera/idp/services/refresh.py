"""Refresh tokens: opaque, stored only as a keyed hash, in families that rotate on every use.

A spent token presented again is reuse: the whole family is revoked (optionally, within a grace
period, the request is only refused). "Spent" is claimed with one conditional UPDATE, so of many
simultaneous uses exactly one wins, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Required, TypedDict, Unpack, cast

from sqlalchemy import ClauseElement, Table, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..config import Settings
from ..store import prepared
from ..store.models import RefreshFamily, RefreshToken, User
from .accounts import status_at
from .audit import Context, record
from .rbac import Access, access_columns, access_from
from .secrets import MasterKey, new_secret

PURPOSE = "refresh-token"
# What we mint is 43 characters; anything past this is no refresh token of ours, and is not hashed.
MAX_REFRESH_TOKEN_LENGTH = 512
_TOKENS = cast(Table, RefreshToken.__table__)
_FAMILIES = cast(Table, RefreshFamily.__table__)
# Tokens are written with a Core INSERT: never read back in the transaction that mints them.
_INSERT_TOKEN = _TOKENS.insert()
_INSERT_FAMILY = _FAMILIES.insert()
# Core statements, built once and prepared (store/prepared.py): the hot path only binds values.
# The token is claimed only while it is unspent, unexpired, and of a live family of the
# presenting client.
_CLAIM = (
    update(_TOKENS)
    .where(
        _TOKENS.c.token_hash == bindparam("digest"),
        _TOKENS.c.spent_at.is_(None),
        _TOKENS.c.expires_at > bindparam("now"),
        _TOKENS.c.family_id.in_(
            select(_FAMILIES.c.id)
            .where(
                _FAMILIES.c.client_id == bindparam("client"),
                _FAMILIES.c.revoked_at.is_(None),
                _FAMILIES.c.expires_at > bindparam("now"),
            )
            .scalar_subquery()
        ),
    )
    .values(spent_at=bindparam("now"))
    .returning(_TOKENS.c.family_id)
)
# The family, and its user's status and access now (the grant needs them next).
_ROLE_NAMES, _PERMISSIONS = access_columns(_FAMILIES.c.user_id)
_FAMILY_WITH_USER = (
    select(
        *_FAMILIES.c,
        User.status.label("user_status"),
        User.locked_until.label("user_locked_until"),
        _ROLE_NAMES.label("role_names"),
        _PERMISSIONS.label("permissions"),
    )
    .select_from(_FAMILIES.outerjoin(User, User.id == _FAMILIES.c.user_id))
    .where(_FAMILIES.c.id == bindparam("family"))
)
_FAMILY_COLUMNS = tuple(column.key for column in _FAMILIES.c)
_REVOKE = (
    update(_FAMILIES)
    .where(_FAMILIES.c.id == bindparam("family"), _FAMILIES.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"))
)


@dataclass(frozen=True, slots=True)
class Rotated:
    """A successful rotation: the family and the new token (in clear, for the client)."""

    family: RefreshFamily  # as read (detached: read its columns only)
    token: str
    access: Access  # the user's roles and permissions now (none for a client's own family)
    user_active: bool = True  # the family's user is active now (a client's own family: True)


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused refresh; ``reason`` is safe to show the client."""

    reason: str
    family: RefreshFamily | None = None
    audited: bool = False  # already written to the audit log as its own event (reuse)


class NewFamily(TypedDict, total=False):
    """What a new refresh family is given (:meth:`RefreshTokens.start`, ``starting``)."""

    tenant_id: Required[str]
    subject: Required[str]
    client_id: Required[str]
    scope: Required[str]
    audience: Required[str]
    now: Required[int]
    user_id: str | None  # the user it speaks for (none: a service)
    amr: str  # how the user authenticated, space-separated
    auth_time: int | None  # when (now unless said)
    session_id: str | None  # the provider session it began in


class RefreshTokens:
    """Issues, rotates and revokes refresh-token families."""

    def __init__(self, master: MasterKey, settings: Settings) -> None:
        self._master = master
        self._settings = settings

    def digest(self, token: str) -> str:
        """The keyed hash under which a refresh token is stored."""
        return self._master.keyed_hash(PURPOSE, token)

    def start(self, session: Session, **family: Unpack[NewFamily]) -> tuple[str, str]:
        """Open a new family (a login or a grant) in ``session``: its id and its first token
        (:meth:`starting`, written)."""
        family_id, token, writes = self.starting(**family)
        session.flush()  # what the caller added first (the user, the client) is written first
        for statement, values in writes:
            prepared.run(session, statement, values)
        return family_id, token

    def starting(
        self, **family: Unpack[NewFamily]
    ) -> tuple[str, str, list[tuple[ClauseElement, dict[str, Any]]]]:
        """A new family: its id, its first token, and the two statements (Core INSERTs, on
        every login's path) that write them, for the caller to run."""
        now = family["now"]
        auth_time = family.get("auth_time")
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "tenant_id": family["tenant_id"],
            "subject": family["subject"],
            "user_id": family.get("user_id"),
            "client_id": family["client_id"],
            "scope": family["scope"],
            "audience": family["audience"],
            "amr": family.get("amr", ""),
            "auth_time": auth_time if auth_time is not None else now,
            "session_id": family.get("session_id"),
            "created_at": now,
            "expires_at": now + self._settings.refresh_token_ttl,
            "revoked_at": None,
            "revoked_reason": None,
        }
        token, first = self._minted(row["id"], row["expires_at"], now)
        return row["id"], token, [(_INSERT_FAMILY, row), (_INSERT_TOKEN, first)]

    def _mint(self, session: Session, family_id: str, family_expires_at: int, now: int) -> str:
        token, values = self._minted(family_id, family_expires_at, now)
        prepared.run(session, _INSERT_TOKEN, values)
        return token

    def _minted(
        self, family_id: str, family_expires_at: int, now: int
    ) -> tuple[str, dict[str, Any]]:
        token = new_secret()
        return token, {
            "token_hash": self.digest(token),
            "family_id": family_id,
            "created_at": now,
            "expires_at": min(family_expires_at, now + self._settings.refresh_idle_ttl),
            "spent_at": None,
        }

    def find(self, session: Session, token: str) -> tuple[RefreshToken, RefreshFamily] | None:
        """The stored token and its family, if ``token`` is one of ours (one query)."""
        if len(token) > MAX_REFRESH_TOKEN_LENGTH:
            return None
        found = session.execute(
            select(RefreshToken, RefreshFamily)
            .join(RefreshFamily, RefreshFamily.id == RefreshToken.family_id)
            .where(RefreshToken.token_hash == self.digest(token))
        ).first()
        return None if found is None else (found[0], found[1])

    def rotate(
        self,
        session: Session,
        token: str,
        *,
        client_id: str,
        now: int,
        context: Context | None = None,
    ) -> Rotated | Refused:
        """Spend ``token`` and issue its successor; detect reuse and revoke the family.

        The good case is one conditional UPDATE that claims the token only if it is unspent,
        unexpired and of a live family of this client; of many simultaneous uses exactly one
        claims it. Anything else is then told apart. The caller commits, then refuses the
        request when the result is :class:`Refused`: a reuse revocation must be written even
        though the request fails.
        """
        if len(token) > MAX_REFRESH_TOKEN_LENGTH:
            return Refused("refresh token invalid")
        claimed = prepared.run(
            session, _CLAIM, {"digest": self.digest(token), "client": client_id, "now": now}
        )
        if claimed is None:
            return self._refusal(session, token, client_id=client_id, now=now, context=context)
        row = prepared.run(session, _FAMILY_WITH_USER, {"family": claimed.family_id})
        assert row is not None  # a token's family is deleted with it, never before
        family = prepared.detached(RefreshFamily, row, _FAMILY_COLUMNS)
        user_active = family.user_id is None or (
            row.user_status is not None
            and status_at(row.user_status, row.user_locked_until, now) == "active"
        )
        return Rotated(
            family,
            self._mint(session, family.id, family.expires_at, now),
            access_from(row.role_names, row.permissions),
            user_active,
        )

    def _refusal(
        self,
        session: Session,
        token: str,
        *,
        client_id: str,
        now: int,
        context: Context | None,
    ) -> Refused:
        """Why a refresh token could not be claimed; a spent one is reuse."""
        found = self.find(session, token)
        if found is None:
            return Refused("refresh token invalid")
        row, family = found
        if family.client_id != client_id:
            return Refused("refresh token was issued to another client")
        if family.revoked_at is not None:
            return Refused("refresh token revoked", family)
        if now >= row.expires_at or now >= family.expires_at:
            return Refused("refresh token expired", family)
        if row.spent_at is None:  # claimed by nobody, yet not claimable: refuse, change nothing
            return Refused("refresh token invalid", family)
        grace = self._settings.refresh_reuse_grace  # 0: no grace, even within the second
        if grace and now - row.spent_at <= grace:
            return Refused("refresh token already used", family)
        self.revoke_family(session, family, "reuse", now)
        record(
            session,
            "refresh.reuse",
            tenant_id=family.tenant_id,
            outcome="failure",
            context=context,
            subject=family.subject,
            client_id=client_id,
            details={"family": family.id},
        )
        return Refused("refresh token reused; the session is revoked", family, audited=True)

    def revoke_family(self, session: Session, family: RefreshFamily, reason: str, now: int) -> None:
        """Revoke every token of ``family`` (kept until purged, so reuse is still recognised);
        ``family`` may be one read by :meth:`rotate` (detached) or one of ``session``."""
        if family.revoked_at is None:
            session.flush()  # a family added in this session is written first
            prepared.run(session, _REVOKE, {"family": family.id, "now": now, "reason": reason})
            set_committed_value(family, "revoked_at", now)
            set_committed_value(family, "revoked_reason", reason)

    def revoke_session(self, session: Session, session_id: str, now: int) -> int:
        """Revoke every live family that began in the provider session ``session_id``."""
        families = session.scalars(
            select(RefreshFamily).where(
                RefreshFamily.session_id == session_id, RefreshFamily.revoked_at.is_(None)
            )
        ).all()
        for family in families:
            self.revoke_family(session, family, "logout", now)
        return len(families)

    def revoke_subject(
        self,
        session: Session,
        tenant_id: str,
        subject: str,
        now: int,
        *,
        client_id: str | None = None,
        reason: str = "logout-all",
    ) -> int:
        """Revoke every live family of a subject (with ``client_id``, of that client only);
        returns how many."""
        query = select(RefreshFamily).where(
            RefreshFamily.tenant_id == tenant_id,
            RefreshFamily.subject == subject,
            RefreshFamily.revoked_at.is_(None),
        )
        if client_id is not None:
            query = query.where(RefreshFamily.client_id == client_id)
        families = session.scalars(query).all()
        for family in families:
            self.revoke_family(session, family, reason, now)
        return len(families)
