"""Errors of the identity provider, each answerable as an RFC 6749 §5.2 error.

>>> error = OAuthError("invalid_grant", "refresh token expired")
>>> error.status, error.as_dict()
(400, {'error': 'invalid_grant', 'error_description': 'refresh token expired'})
"""

from __future__ import annotations

import math
from http import HTTPStatus

# The admin API's problem types (RFC 9457 §3.1.1): one URI per stable code.
PROBLEM_TYPE = "urn:tessera:problem:"


class OAuthError(Exception):
    """An OAuth 2.0 error: ``error`` code, a description safe to show, an HTTP status."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status

    def as_dict(self) -> dict[str, str]:
        """The JSON body RFC 6749 §5.2 describes."""
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class Throttled(OAuthError):
    """429: too many failed attempts for this account or client address. ``retry_after`` is
    whole seconds to wait (the ``Retry-After`` header); ``cause`` (``account``, ``ip`` or
    ``locked``) is for the audit log only: the answer is the same whatever the cause.

    >>> error = Throttled(1.2, cause="ip")
    >>> error.status, error.retry_after, error.as_dict()["error"]
    (429, 2, 'invalid_grant')
    """

    def __init__(self, retry_after: float, *, cause: str = "account") -> None:
        super().__init__("invalid_grant", "too many failed attempts; try again later", 429)
        self.retry_after = max(1, math.ceil(retry_after))
        self.cause = cause


def invalid_client(description: str = "client authentication failed") -> OAuthError:
    """401 invalid_client (RFC 6749 §5.2)."""
    return OAuthError("invalid_client", description, 401)


def invalid_grant(description: str) -> OAuthError:
    """400 invalid_grant: the grant (refresh token, password) is invalid, expired or revoked."""
    return OAuthError("invalid_grant", description)


def invalid_request(description: str) -> OAuthError:
    """400 invalid_request: a parameter is missing, repeated or malformed."""
    return OAuthError("invalid_request", description)


class AdminError(Exception):
    """A refused administrative change: a stable ``code``, a ``detail`` safe to show (never a
    secret), and the HTTP status it answers with (as RFC 9457 problem details).

    >>> error = not_found("user")
    >>> error.status, error.code, error.detail
    (404, 'not_found', 'no such user')
    """

    def __init__(self, code: str, detail: str, status: int) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status

    def as_problem(self) -> dict[str, object]:
        """The RFC 9457 body: ``type`` is stable per ``code`` (``urn:tessera:problem:<code>``),
        ``title`` the status's phrase.

        >>> not_found("user").as_problem()["type"]
        'urn:tessera:problem:not_found'
        """
        return {
            "type": PROBLEM_TYPE + self.code,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }


def not_found(what: str) -> AdminError:
    """404: ``what`` does not exist — or belongs to another tenant, which looks the same."""
    return AdminError("not_found", f"no such {what}", 404)


def conflict(detail: str) -> AdminError:
    """409: the change clashes with what exists (a taken username, a duplicate role)."""
    return AdminError("conflict", detail, 409)


def unprocessable(detail: str) -> AdminError:
    """422: the change is well-formed but not allowed (a weak password, an unknown role)."""
    return AdminError("invalid", detail, 422)
