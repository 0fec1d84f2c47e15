"""The guard's refusals: each a typed error with a stable ``code`` and the HTTP answer it maps to.

``status`` and ``error`` follow RFC 6750 §3.1 (``invalid_request`` → 400, ``invalid_token`` → 401,
``insufficient_scope`` → 403); a request with no credentials at all gets a bare challenge. Codes are
fixed words that logs and ``error_description`` carry; nothing here ever holds the token.

>>> from tessera.guard import errors
>>> refusal = errors.InsufficientScope(["orders:write"])
>>> refusal.status, refusal.error, refusal.code, refusal.scope
(403, 'insufficient_scope', 'insufficient_scope', ('orders:write',))
"""

from __future__ import annotations

from collections.abc import Iterable

from tessera import jose


class GuardError(Exception):
    """A request the guard refuses; ``status``, ``error`` and ``code`` say how to answer it."""

    status = 401
    error: str | None = "invalid_token"
    code = "invalid_token"
    challenge = True

    def __init__(self, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(self.code)


class MissingToken(GuardError):
    """No credentials at all: a bare ``Bearer`` challenge, without an error (RFC 6750 §3.1).

    >>> MissingToken().error is None
    True
    """

    error = None
    code = "missing_token"


class TokenRefused(GuardError):
    """The token failed verification; ``code`` is the ``tessera.jose`` error's stable code.

    >>> TokenRefused.from_jose(jose.ExpiredToken()).code
    'expired'
    """

    @classmethod
    def from_jose(cls, error: jose.JoseError) -> TokenRefused:
        """The refusal for a ``tessera.jose`` error, carrying its code.

        >>> TokenRefused.from_jose(jose.InvalidSignature()).status
        401
        """
        return cls(error.code)


class TokenRevoked(TokenRefused):
    """The token is valid but was revoked (its ``jti``, or everything its subject held)."""

    code = "revoked"


class InvalidRequest(GuardError):
    """The request is malformed: two token transports, a token in the query string, bad syntax.

    >>> InvalidRequest("token_in_query").status
    400
    """

    status = 400
    error = "invalid_request"
    code = "invalid_request"


class CsrfFailed(GuardError):
    """A cookie-borne token on an unsafe method without a matching double-submit CSRF token."""

    status = 403
    error = "invalid_request"
    code = "csrf_failed"
    challenge = False


class Forbidden(GuardError):
    """The token is valid but does not grant this route (RFC 6750's ``insufficient_scope``).

    >>> Forbidden("tenant_mismatch").status
    403
    """

    status = 403
    error = "insufficient_scope"
    code = "forbidden"


class InsufficientScope(Forbidden):
    """The token lacks scopes the route requires; ``scope`` lists all the route needs."""

    code = "insufficient_scope"

    def __init__(self, scope: Iterable[str]) -> None:
        super().__init__()
        self.scope = tuple(sorted(scope))


class Unavailable(GuardError):
    """The guard cannot decide now (no usable keys, or revocation unknown on a sensitive route).

    It fails closed: 503, so clients retry instead of dropping a token that may be good.

    >>> Unavailable("keys_unavailable").status
    503
    """

    status = 503
    error = "temporarily_unavailable"
    code = "unavailable"
    challenge = False


class KeysUnavailable(Exception):
    """A key source has no keys it may serve: never fetched, or the last good ones are too old."""


class FetchError(Exception):
    """A remote document could not be fetched or was refused (size, redirect, scheme, JSON)."""


class RevocationUnavailable(Exception):
    """A revocation list cannot answer now (its backend is unreachable or out of sync)."""


__all__ = [
    "CsrfFailed",
    "FetchError",
    "Forbidden",
    "GuardError",
    "InsufficientScope",
    "InvalidRequest",
    "KeysUnavailable",
    "MissingToken",
    "RevocationUnavailable",
    "TokenRefused",
    "TokenRevoked",
    "Unavailable",
]
