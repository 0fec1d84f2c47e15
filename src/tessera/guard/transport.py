"""Where a request carries its token: ``Authorization: Bearer`` (RFC 6750 §2.1), or optionally an
HttpOnly cookie guarded by a double-submit CSRF token. Never the query string.

Adapters hand over what they parsed; :meth:`Transport.extract` returns the token, ``None`` when
there is none, or raises: two ways at once, a token in the query, or a bad header is
``InvalidRequest`` (400); a cookie on an unsafe method without a matching CSRF header is
``CsrfFailed`` (403). The CSRF comparison is constant-time.

A token longer than ``jose``'s bound (64 KiB) is refused before it is parsed; the request's whole
header block is the server's to bound, before the app runs. With uvicorn, ``--http h11
--h11-max-incomplete-event-size 16384`` (the default parser, httptools, has no bound); with
gunicorn (Flask), ``--limit-request-fields 100 --limit-request-field_size 8190``; behind nginx,
``large_client_header_buffers 4 16k``. Each answers an oversized header block before the app.

>>> Transport().extract(method="GET", authorization=["Bearer abc.def.ghi"])
'abc.def.ghi'
>>> cookies = {"access_token": "abc.def.ghi", "csrf_token": "s3cret"}
>>> Transport(cookie="access_token").extract(method="POST", cookies=cookies, csrf="s3cret")
'abc.def.ghi'
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from .errors import CsrfFailed, InvalidRequest

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_EMPTY: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class Transport:
    """Token transport policy. ``cookie`` names the token cookie; ``None`` means Bearer only."""

    cookie: str | None = None
    csrf_cookie: str = "csrf_token"
    csrf_header: str = "X-CSRF-Token"

    def extract(
        self,
        *,
        method: str,
        authorization: Sequence[str] = (),
        cookies: Mapping[str, str] = _EMPTY,
        csrf: str | None = None,
        query: Collection[str] = (),
    ) -> str | None:
        """The request's token, or ``None``; ``csrf`` is the CSRF header's value, if any.

        >>> Transport().extract(method="GET", query=["access_token"])
        Traceback (most recent call last):
        ...
        tessera.guard.errors.InvalidRequest: token_in_query
        """
        if "access_token" in query:
            raise InvalidRequest("token_in_query")
        bearer = _bearer(authorization)
        cookie_token = cookies.get(self.cookie) if self.cookie is not None else None
        if bearer is not None and cookie_token:
            raise InvalidRequest("multiple_transports")
        if bearer is not None:
            return bearer
        if not cookie_token:
            return None
        if method.upper() not in SAFE_METHODS:
            expected = cookies.get(self.csrf_cookie)
            if not csrf or not expected or not _same(csrf, expected):
                raise CsrfFailed()
        return cookie_token


def new_csrf_token() -> str:
    """A fresh random double-submit CSRF token (set it as a readable cookie; echo it in a header).

    >>> len(new_csrf_token())
    43
    """
    return secrets.token_urlsafe(32)


def _bearer(authorization: Sequence[str]) -> str | None:
    if not authorization:
        return None
    if len(authorization) > 1:
        raise InvalidRequest("multiple_authorization")
    scheme, _, credentials = authorization[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    credentials = credentials.strip()
    if not _B64TOKEN.fullmatch(credentials):
        raise InvalidRequest("malformed_authorization")
    return credentials


def _same(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))
