"""Client authentication with a signed JWT: ``private_key_jwt`` (RFC 7523 §2.2 and §3, OpenID
Connect Core §9).

A client registers a public JWK Set instead of having a secret (:func:`check_jwks` says which
sets may be registered). At the token, revocation and introspection endpoints it sends
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a
``client_assertion`` it signed with one of those keys. :class:`ClientAssertions` verifies one:
``iss`` and ``sub`` are the client, ``aud`` names the token endpoint or the issuer, ``exp`` lies
in the future and at most five minutes after it was made, the algorithm is one of
:data:`ASSERTION_ALGS` (never ``none``, never an HMAC), and the ``jti`` is used once
(:func:`spend`: an insert under the table's primary key, so of two concurrent uses exactly one
wins). Every refusal is the same ``invalid_client``, which never repeats the assertion.

>>> key = jose.Key.generate("ES256")
>>> stored = check_jwks({"keys": [key.public().to_jwk()]})
>>> key_ids(stored) == [{"kid": key.kid, "thumbprint": key.thumbprint()}]
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera import jose

from ..errors import invalid_client
from ..store.models import ID_LENGTH, JTI_LENGTH, Client, ClientAssertion

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# What an assertion may be signed with: asymmetric only (a public key never becomes an HMAC
# secret, and a client has no secret to share). ES512 is there for the P-521 keys one may hold.
ASSERTION_ALGS = ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")
# An assertion lives at most this long (from its iat, and from now): a captured one is of
# little use, and its jti is remembered only as long.
MAX_LIFETIME = 300
# How far the client's clock may be ahead of ours for iat and nbf; exp is never stretched.
CLOCK_SKEW = 10
MAX_ASSERTION_BYTES = 8 * 1024
MAX_KEYS = 10
MAX_KID_LENGTH = 200
MAX_JWKS_BYTES = 64 * 1024
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192
_CURVES = {"EC": ("P-256", "P-384", "P-521"), "OKP": ("Ed25519",)}
# The members only a private (or symmetric) JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_INSERT = cast(Table, ClientAssertion.__table__).insert()
_VERIFIER_CACHE = 1024


@dataclass(frozen=True, slots=True)
class Assertion:
    """A verified assertion: whose it is, and what :func:`spend` remembers of it."""

    client_id: str
    jti: str
    expires_at: int


def check_jwks(jwks: Mapping[str, Any] | str | bytes) -> str:
    """The JSON text to store for a client's JWK Set; a :class:`ValueError` saying why not.

    The set holds 1 to :data:`MAX_KEYS` public signing keys: RSA of 2048 to 8192 bits, EC on
    P-256, P-384 or P-521, or Ed25519 — no private member, no symmetric key, no ``alg``
    outside :data:`ASSERTION_ALGS`, each ``kid`` once. What is stored is each key's public
    JWK as :meth:`tessera.jose.Key.to_jwk` writes it (a key without ``kid`` is named by its
    RFC 7638 thumbprint).

    >>> check_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
    Traceback (most recent call last):
    ...
    ValueError: key 1 holds private members: a client registers its public keys only
    """
    if isinstance(jwks, str | bytes):
        raw = jwks.encode("utf-8", "replace") if isinstance(jwks, str) else jwks
        try:
            jwks = jose.json.loads_object(raw, max_bytes=MAX_JWKS_BYTES)
        except jose.JoseError:
            raise ValueError("the JWK Set is not a JSON object") from None
    members = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_KEYS:
        raise ValueError(f"a JWK Set holds 1 to {MAX_KEYS} keys in its 'keys' list")
    keys = [_public_key(member, index) for index, member in enumerate(members, 1)]
    if len({key.kid for key in keys}) != len(keys):
        raise ValueError("each key of the JWK Set has a kid of its own")
    if len({key.thumbprint() for key in keys}) != len(keys):
        raise ValueError("a key is in the JWK Set twice")
    text = jose.json.dumps({"keys": [key.to_jwk() for key in keys]})
    if len(text) > MAX_JWKS_BYTES:
        raise ValueError(f"a JWK Set takes at most {MAX_JWKS_BYTES} bytes")
    return text.decode("utf-8")


def _public_key(member: object, index: int) -> jose.Key:
    """Member ``index`` (from 1) of a JWK Set as a key a client may sign assertions with."""
    if not isinstance(member, Mapping):
        raise ValueError(f"key {index} is not a JSON object")
    if _PRIVATE_MEMBERS & member.keys():
        raise ValueError(
            f"key {index} holds private members: a client registers its public keys only"
        )
    if member.get("kty") not in _CURVES and member.get("kty") != "RSA":
        raise ValueError(f"key {index}: keys are RSA, EC or OKP (asymmetric)")
    kid = member.get("kid")
    if kid is not None and (not isinstance(kid, str) or not _is_kid(kid)):
        raise ValueError(f"key {index}: a kid has 1 to {MAX_KID_LENGTH} printable characters")
    try:
        key = jose.Key.from_jwk(member)
    except jose.InvalidKey as error:
        raise ValueError(f"key {index}: {error}") from None
    if key.kty == "RSA" and not MIN_RSA_BITS <= key.size <= MAX_RSA_BITS:
        raise ValueError(f"key {index}: an RSA key has {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
    if key.kty in _CURVES and key.crv not in _CURVES[key.kty]:
        raise ValueError(f"key {index}: the curves are P-256, P-384, P-521 and Ed25519")
    if key.alg is not None and key.alg not in ASSERTION_ALGS:
        raise ValueError(f"key {index}: alg is one of {', '.join(ASSERTION_ALGS)}")
    if key.use not in (None, "sig") or (key.key_ops is not None and "verify" not in key.key_ops):
        raise ValueError(f"key {index} is not a key for verifying signatures")
    return key


def _is_kid(kid: str) -> bool:
    """Whether ``kid`` may name a stored key: bounded and printable (no control character, no
    lone surrogate), so every database stores it and every terminal shows it as it is.

    >>> _is_kid("2024-01"), _is_kid(""), _is_kid("a\\x00b"), _is_kid("\\ud800")
    (True, False, False, False)
    """
    return 0 < len(kid) <= MAX_KID_LENGTH and kid.isprintable()


def key_ids(stored: str | None) -> list[dict[str, str]] | None:
    """What the audit log keeps of a stored JWK Set: each key's ``kid`` and RFC 7638
    thumbprint, never the keys themselves.

    >>> key_ids(None) is None
    True
    """
    if stored is None:
        return None
    return [
        {"kid": key.kid or "", "thumbprint": key.thumbprint()}
        for key in jose.KeySet.from_jwks(stored)
    ]


def stored_jwks(stored: str | None) -> dict[str, Any] | None:
    """A stored JWK Set as the JSON object it is (what an admin reads; the keys are public).

    >>> stored_jwks('{"keys":[]}')
    {'keys': []}
    """
    return None if stored is None else jose.json.loads_object(stored.encode("utf-8"))


def claimed_client(assertion: str) -> str:
    """UNVERIFIED: the client an assertion says it comes from (its ``iss``), to find the keys
    that will verify it. Nothing else is read before the signature is checked.

    >>> claimed_client("not a token")
    Traceback (most recent call last):
    ...
    tessera.idp.errors.OAuthError: invalid_client: client authentication failed
    """
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise invalid_client()
    try:
        _, claims = jose.jwt.decode_unverified(assertion)
    except (jose.JoseError, ValueError):
        raise invalid_client() from None
    issuer = claims.get("iss")
    if type(issuer) is not str or not 0 < len(issuer) <= ID_LENGTH:
        raise invalid_client()
    return issuer


class ClientAssertions:
    """Verifies the assertions of clients that registered a JWK Set, for the provider at
    ``issuer`` (whose token endpoint is ``{issuer}/oauth2/token``).

    >>> ClientAssertions("https://id.example").audiences
    ('https://id.example/oauth2/token', 'https://id.example')
    """

    def __init__(self, issuer: str) -> None:
        self.audiences = (f"{issuer}/oauth2/token", issuer)
        # One verifier per client and key set: a changed set is a new entry.
        self._verifiers: dict[tuple[str, str], jose.Verifier] = {}

    def verify(self, client: Client, assertion: str, *, now: float) -> Assertion:
        """The verified assertion of ``client``, not spent yet (:func:`spend` does that);
        ``invalid_client`` whatever is wrong.

        >>> ClientAssertions("https://id.example").verify(Client(id="c"), "x.y.z", now=0)
        Traceback (most recent call last):
        ...
        tessera.idp.errors.OAuthError: invalid_client: client authentication failed
        """
        if client.jwks is None:
            raise invalid_client()
        try:
            claims = self._verifier(client.id, client.jwks).verify(assertion, now=now)
        except jose.JoseError:
            raise invalid_client() from None
        exp, iat, jti = claims["exp"], claims.get("iat"), claims["jti"]
        if claims["sub"] != client.id or not 0 < len(jti) <= JTI_LENGTH:
            raise invalid_client()
        # exp is never stretched by the clock skew; a longer life is refused, not shortened.
        if exp <= now or exp > now + MAX_LIFETIME + CLOCK_SKEW:
            raise invalid_client()
        if iat is not None and exp - iat > MAX_LIFETIME:
            raise invalid_client()
        return Assertion(client.id, jti, math.ceil(exp))

    def _verifier(self, client_id: str, jwks: str) -> jose.Verifier:
        verifier = self._verifiers.get((client_id, jwks))
        if verifier is None:
            try:
                keys = jose.KeySet.from_jwks(jwks)
            except jose.JoseError:  # stored after check_jwks: never, unless edited by hand
                raise invalid_client() from None
            verifier = jose.Verifier(
                keys,
                algorithms=ASSERTION_ALGS,
                issuer=client_id,
                audience=self.audiences,
                leeway=CLOCK_SKEW,
                require=("exp", "sub", "jti"),
                max_token_bytes=MAX_ASSERTION_BYTES,
            )
            if len(self._verifiers) >= _VERIFIER_CACHE:
                self._verifiers.clear()
            self._verifiers[(client_id, jwks)] = verifier
        return verifier


def spend(session: Session, assertion: Assertion) -> None:
    """Remember ``assertion``'s ``jti`` until it expires; one already remembered is a replay
    (``invalid_client``). An insert under the primary key (client, jti) in a savepoint: of two
    concurrent uses exactly one row is written, on SQLite and PostgreSQL alike, and the loser's
    transaction goes on."""
    values = {
        "client_id": assertion.client_id,
        "jti": assertion.jti,
        "expires_at": assertion.expires_at,
    }
    try:
        with session.begin_nested():
            session.execute(_INSERT, values)
    except IntegrityError:
        raise invalid_client() from None
