"""Errors of the identity provider's flows and components: domain errors with stable codes.

They say what went wrong, never how to answer it: the HTTP layer picks the status and the shape
(an RFC 6749 error, an RFC 9457 problem), the command line its exit code.

>>> error = OAuthError("invalid_grant", "refresh token expired")
>>> error.error, error.as_dict()
('invalid_grant', {'error': 'invalid_grant', 'error_description': 'refresh token expired'})
"""

from __future__ import annotations

import math


class OAuthError(Exception):
    """An OAuth 2.0 refusal (RFC 6749 §5.2): its ``error`` code and a description safe to show."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description

    def as_dict(self) -> dict[str, str]:
        """The JSON body RFC 6749 §5.2 describes."""
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class Throttled(OAuthError):
    """Too many failed attempts for this account or client address. ``retry_after`` is whole
    seconds to wait; ``cause`` (``account``, ``ip`` or ``locked``) is for the audit log only:
    the answer is the same whatever the cause.

    >>> error = Throttled(1.2, cause="ip")
    >>> error.retry_after, error.as_dict()["error"]
    (2, 'invalid_grant')
    """

    def __init__(self, retry_after: float, *, cause: str = "account") -> None:
        super().__init__("invalid_grant", "too many failed attempts; try again later")
        self.retry_after = max(1, math.ceil(retry_after))
        self.cause = cause


def invalid_client(description: str = "client authentication failed") -> OAuthError:
    """invalid_client (RFC 6749 §5.2): the client is unknown or its authentication failed."""
    return OAuthError("invalid_client", description)


def invalid_grant(description: str) -> OAuthError:
    """invalid_grant: the grant (refresh token, password) is invalid, expired or revoked."""
    return OAuthError("invalid_grant", description)


def invalid_request(description: str) -> OAuthError:
    """invalid_request: a parameter is missing, repeated or malformed."""
    return OAuthError("invalid_request", description)


class AdminError(Exception):
    """A refused administrative change: a stable ``code`` (``not_found``, ``conflict``,
    ``invalid``, ``forbidden``) and a ``detail`` safe to show (never a secret).

    >>> error = not_found("user")
    >>> error.code, error.detail
    ('not_found', 'no such user')
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def not_found(what: str) -> AdminError:
    """``what`` does not exist — or belongs to another tenant, which looks the same."""
    return AdminError("not_found", f"no such {what}")


def conflict(detail: str) -> AdminError:
    """The change clashes with what exists (a taken username, a duplicate role)."""
    return AdminError("conflict", detail)


def unprocessable(detail: str) -> AdminError:
    """The change is well-formed but not allowed (a weak password, an unknown role)."""
    return AdminError("invalid", detail)


def forbidden(detail: str) -> AdminError:
    """The caller may not make this change (grant a permission it does not hold)."""
    return AdminError("forbidden", detail)
