"""The tables of the identity provider. Every row that belongs to someone carries its tenant.

Times are integer epoch seconds: the unit tokens speak, and the same on SQLite and PostgreSQL.

>>> sorted(Base.metadata.tables)[:3]
['audit_events', 'authorization_codes', 'browser_sessions']
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Column widths, named once: the models declare them and every check of input uses them, so a
# value that passes a check always fits its column (on PostgreSQL too, which refuses overflow).
ID_LENGTH = 64  # tenant and client ids (chosen by people), and what refers to them
UUID_LENGTH = 36  # ids the provider makes: users, roles, refresh families
NAME_LENGTH = 200  # usernames, display names, subjects and actors
EMAIL_LENGTH = 320  # RFC 5321: 64 for the local part, @, 255 for the domain
ROLE_NAME_LENGTH = 100  # role names and permissions
KEY_ID_LENGTH = 100  # kid of a signing key, jti of an access token
AUDIENCE_LENGTH = 500
EVENT_LENGTH = 64
URI_LENGTH = 2000  # a redirect or logout URI: what browsers and servers reliably carry
NONCE_LENGTH = 512  # an OpenID Connect nonce (the client's, echoed into the ID token)
DIGEST_LENGTH = 64  # a keyed hash (HMAC-SHA256, hex) of a stored secret
JTI_LENGTH = 255  # the jti of a client's assertion (the client's choice, so a generous bound)
COUNTER_KEY_LENGTH = 40  # a lockout counter: a letter, a colon and a keyed hash's first 32


class Base(DeclarativeBase):
    """Declarative base of every Tessera table."""


class Tenant(Base):
    """An isolated space of users, clients, roles and audit rows."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    # "optional": users may enrol a second factor; "required": every login needs one.
    mfa_policy: Mapped[str] = mapped_column(String(16), default="optional")
    created_at: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    """A person who logs in; usernames and emails are unique per tenant, case-insensitively.

    ``status`` is ``active``, ``locked`` (by an admin or after too many failures, until
    ``locked_until`` when set) or ``disabled``. The TOTP secret is sealed with the master key;
    ``mfa_last_step`` is the last time step accepted, so each code is used once.
    """

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "username_key", name="uq_users_username"),
        # An index rather than a constraint: SQLite adds one without rebuilding the table.
        Index("uq_users_email", "tenant_id", "email_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    username: Mapped[str] = mapped_column(String(NAME_LENGTH))
    username_key: Mapped[str] = mapped_column(String(NAME_LENGTH))
    email: Mapped[str | None] = mapped_column(String(EMAIL_LENGTH))
    email_key: Mapped[str | None] = mapped_column(String(EMAIL_LENGTH))
    password_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    locked_until: Mapped[int | None] = mapped_column(BigInteger)
    mfa_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    mfa_pending: Mapped[bytes | None] = mapped_column(LargeBinary)
    mfa_enabled_at: Mapped[int | None] = mapped_column(BigInteger)
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Role(Base):
    """A named set of permissions (``orders:read``) within a tenant."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_roles_name"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(ROLE_NAME_LENGTH))
    description: Mapped[str] = mapped_column(String(500), default="")
    permissions: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class UserRole(Base):
    """A role granted to a user."""

    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class RecoveryCode(Base):
    """A single-use MFA recovery code, by its keyed hash."""

    __tablename__ = "recovery_codes"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class Client(Base):
    """An OAuth 2.0 client; its secret is kept only as a keyed hash."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    grant_types: Mapped[str] = mapped_column(Text)
    allowed_scopes: Mapped[str] = mapped_column(Text, default="")
    default_scopes: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[str] = mapped_column(String(AUDIENCE_LENGTH))
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Space-separated (a registered URI holds no space): where codes and logouts may go back to.
    redirect_uris: Mapped[str] = mapped_column(Text, default="")
    post_logout_redirect_uris: Mapped[str] = mapped_column(Text, default="")
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(URI_LENGTH))
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(16), default="RS256")
    # private_key_jwt (RFC 7523): the client's public JWK Set as JSON; such a client has no
    # secret and authenticates with an assertion signed by one of these keys.
    jwks: Mapped[str | None] = mapped_column(Text)


class ClientAssertion(Base):
    """The ``jti`` of a client assertion already used, kept until the assertion expires: each
    is accepted once (RFC 7523 §3, OpenID Connect Core §9)."""

    __tablename__ = "client_assertions"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), primary_key=True)
    jti: Mapped[str] = mapped_column(String(JTI_LENGTH), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuthorizationCode(Base):
    """An authorization code, by the keyed hash of its value: what the authorization request
    decided, redeemable once before ``expires_at``; then what was issued from it."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(DIGEST_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    redirect_uri: Mapped[str] = mapped_column(String(URI_LENGTH))
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str | None] = mapped_column(String(AUDIENCE_LENGTH))
    code_challenge: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    nonce: Mapped[str | None] = mapped_column(String(NONCE_LENGTH))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str] = mapped_column(String(100))
    acr: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    redeemed_at: Mapped[int | None] = mapped_column(BigInteger)
    # Set when tokens are issued from the code: what a replay of the code revokes.
    family_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    access_jti: Mapped[str | None] = mapped_column(String(KEY_ID_LENGTH))


class BrowserSession(Base):
    """A person signed in at the provider (single sign-on), found by the keyed hash of its
    cookie; ``id`` is the ``sid`` of the ID tokens it gives."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(DIGEST_LENGTH), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str] = mapped_column(String(100))
    acr: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)


class SessionClient(Base):
    """A client that received a code in a browser session: whom its logout must tell."""

    __tablename__ = "session_clients"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("browser_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), primary_key=True)
    first_at: Mapped[int] = mapped_column(BigInteger)


class Consent(Base):
    """What a user allowed a third-party client, remembered until revoked."""

    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    scope: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[int] = mapped_column(BigInteger)


class SigningKey(Base):
    """A signing key: published from ``published_at``, signs from ``activates_at`` until
    ``retires_at``, and stays published until ``expires_at`` (its last token has expired)."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[str] = mapped_column(Text)
    private_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    published_at: Mapped[int] = mapped_column(BigInteger)
    activates_at: Mapped[int] = mapped_column(BigInteger, index=True)
    retires_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class RefreshFamily(Base):
    """Every refresh token descended from one login or grant; revoked as a whole on reuse."""

    __tablename__ = "refresh_families"

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    subject: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[str] = mapped_column(String(AUDIENCE_LENGTH))
    amr: Mapped[str] = mapped_column(String(100), default="")
    auth_time: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_reason: Mapped[str | None] = mapped_column(String(50))
    # The provider session whose sign-in began the family (a code flow): its logout revokes it.
    session_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH), index=True)


class RefreshToken(Base):
    """One refresh token of a family, by the keyed hash of its value; spent once used."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        ForeignKey("refresh_families.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    spent_at: Mapped[int | None] = mapped_column(BigInteger)


class RevokedToken(Base):
    """An access token's ``jti`` on the blocklist until the token would have expired."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class SubjectNotBefore(Base):
    """Logout everywhere: tokens of this subject issued before ``not_before`` are refused."""

    __tablename__ = "subject_not_before"

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    subject: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    not_before: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class ThrottleCounter(Base):
    """A failure counter of the lockout (``cache/throttle.py``), when no Redis is configured:
    an account's or a client address's failures, counted by every node in one place. ``key``
    is a keyed hash, never a username or an address; times are epoch seconds. A row whose
    ``expires_at`` has passed counts for nothing (housekeeping deletes it)."""

    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(COUNTER_KEY_LENGTH), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    in_flight: Mapped[int] = mapped_column(Integer)  # attempts admitted, not yet settled
    in_flight_at: Mapped[float] = mapped_column(Float)
    last_attempt_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float] = mapped_column(Float)
    locked_until: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class AuditEvent(Base):
    """One security event: append-only, never a secret or a token."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_tenant_at", "tenant_id", "at"),)

    # 64-bit: at a few thousand grants a second a 32-bit id runs out within weeks. SQLite's
    # INTEGER PRIMARY KEY is 64-bit already (and only that spelling is its rowid).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    event: Mapped[str] = mapped_column(String(EVENT_LENGTH), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    subject: Mapped[str | None] = mapped_column(String(NAME_LENGTH), index=True)
    client_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[str] = mapped_column(Text, default="{}")


class Lock(Base):
    """Named rows that serialize cluster-wide jobs (key rotation) with SELECT … FOR UPDATE."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    held_at: Mapped[int] = mapped_column(BigInteger, default=0)
