"""Errors of the identity provider, each answerable as an RFC 6749 §5.2 error.

>>> error = OAuthError("invalid_grant", "refresh token expired")
>>> error.status, error.as_dict()
(400, {'error': 'invalid_grant', 'error_description': 'refresh token expired'})
"""

from __future__ import annotations


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


def invalid_client(description: str = "client authentication failed") -> OAuthError:
    """401 invalid_client (RFC 6749 §5.2)."""
    return OAuthError("invalid_client", description, 401)


def invalid_grant(description: str) -> OAuthError:
    """400 invalid_grant: the grant (refresh token, password) is invalid, expired or revoked."""
    return OAuthError("invalid_grant", description)


def invalid_request(description: str) -> OAuthError:
    """400 invalid_request: a parameter is missing, repeated or malformed."""
    return OAuthError("invalid_request", description)
