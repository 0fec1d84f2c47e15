"""Reading requests the way OAuth 2.0 wants: one value per parameter, client credentials
from HTTP Basic (RFC 6749 §2.3.1), and who is asking, for the audit log."""

from __future__ import annotations

import binascii
from base64 import b64decode
from urllib.parse import unquote

from fastapi import Request

from ..errors import OAuthError, invalid_request
from ..provider import Provider
from ..services.audit import Context


async def single_valued_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict; a parameter sent twice is ``invalid_request`` (§3.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise invalid_request("the body must be application/x-www-form-urlencoded")
    try:  # UTF-8, strictly (RFC 6749 Appendix B): a replacement character could match anything
        pairs = form_pairs((await request.body()).decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid_request("the body is not UTF-8") from None
    values: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:  # empty or not, a parameter is sent once
            raise invalid_request(f"parameter {name[:40]!r} repeated")
        if "\x00" in name or "\x00" in value:  # no OAuth parameter has one (RFC 6749 App. A)
            raise invalid_request("NUL characters are not allowed")
        seen.add(name)
        if value != "":
            values[name] = value
    return values


def form_pairs(body: str) -> list[tuple[str, str]]:
    """The name-value pairs of an ``application/x-www-form-urlencoded`` body, as
    ``parse_qsl(body, keep_blank_values=True, errors="strict")`` reads them (a field without
    ``=`` has an empty value; percent-escapes must spell UTF-8) in half its time: a token
    request's fields rarely need decoding, and most are not looked at twice.

    >>> form_pairs("grant_type=password&redirect_uri=https%3A%2F%2Frp%2Fcb&scope=a+b&x")
    [('grant_type', 'password'), ('redirect_uri', 'https://rp/cb'), ('scope', 'a b'), ('x', '')]
    >>> form_pairs("code=%ff")
    Traceback (most recent call last):
    ...
    UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte
    """
    pairs = []
    for field in body.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((_form_decoded(name), _form_decoded(value)))
    return pairs


def _form_decoded(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text, errors="strict") if "%" in text else text


def provider_of(request: Request) -> Provider:
    """The provider this app serves, typed. A plain call, not a FastAPI dependency: resolving
    one costs a route ~50 µs (JWKS measured 5,106 → 4,053 req/s with one), more than the
    whole of what a JWKS answer does."""
    provider: Provider = request.app.state.provider
    return provider


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """Client id and secret from ``Authorization: Basic``, form-decoded; ``None`` if absent."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", "unsupported client authentication")
    try:
        decoded = b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuthError("invalid_client", "malformed Basic credentials")
    client_id, secret = unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
    if "\x00" in client_id or "\x00" in secret:
        raise OAuthError("invalid_client", "malformed Basic credentials")
    return client_id, secret


def context_of(request: Request) -> Context:
    """Client address and user agent, for audit rows."""
    return Context(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
