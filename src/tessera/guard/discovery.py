"""Find an issuer's JWKS URL from its metadata (OpenID Connect Discovery, then RFC 8414).

Metadata whose ``issuer`` is not exactly the configured issuer is refused (OIDC Discovery §4.3,
RFC 8414 §3.3): that is what stops one issuer's metadata from naming another's keys.

>>> from tessera.guard.discovery import metadata_urls, jwks_uri_from
>>> metadata_urls("https://id.example/tenant")
('https://id.example/tenant/.well-known/openid-configuration', \
'https://id.example/.well-known/oauth-authorization-server/tenant')
>>> jwks_uri_from({"issuer": "https://id.example", "jwks_uri": "https://id.example/jwks"},
...               "https://id.example")
'https://id.example/jwks'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .errors import FetchError
from .fetch import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, afetch_json, check_url, fetch_json


def metadata_urls(issuer: str) -> tuple[str, str]:
    """The OIDC Discovery URL and the RFC 8414 URL for ``issuer``, in the order they are tried.

    >>> metadata_urls("https://id.example")[1]
    'https://id.example/.well-known/oauth-authorization-server'
    """
    parsed = check_url(issuer)
    path = parsed.path.rstrip("/")
    origin = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
    return (
        f"{origin}{path}/.well-known/openid-configuration",
        f"{origin}/.well-known/oauth-authorization-server{path}",
    )


def jwks_uri_from(metadata: Mapping[str, Any], issuer: str) -> str:
    """The ``jwks_uri`` of issuer metadata, refusing metadata that names another issuer.

    >>> jwks_uri_from({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/k"},
    ...               "https://id.example")
    Traceback (most recent call last):
    ...
    tessera.guard.errors.FetchError: metadata issuer differs from the configured issuer
    """
    if metadata.get("issuer") != issuer:
        raise FetchError("metadata issuer differs from the configured issuer")
    jwks_uri = metadata.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchError("metadata has no jwks_uri")
    check_url(jwks_uri)
    return jwks_uri


def discover(
    issuer: str,
    *,
    client: httpx.Client | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> str:
    """Fetch ``issuer``'s metadata and return its ``jwks_uri``.

    >>> discover("http://id.example")
    Traceback (most recent call last):
    ...
    tessera.guard.errors.FetchError: only https URLs (or http on loopback) are fetched
    """
    failure: FetchError | None = None
    for url in metadata_urls(issuer):
        try:
            fetched = fetch_json(url, client=client, timeout=timeout, max_bytes=max_bytes)
        except FetchError as error:
            failure = error
            continue
        return jwks_uri_from(fetched.document, issuer)
    assert failure is not None
    raise failure


async def adiscover(
    issuer: str,
    *,
    client: httpx.AsyncClient | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> str:
    """The async twin of :func:`discover`.

    >>> import asyncio
    >>> asyncio.run(adiscover("http://id.example"))
    Traceback (most recent call last):
    ...
    tessera.guard.errors.FetchError: only https URLs (or http on loopback) are fetched
    """
    failure: FetchError | None = None
    for url in metadata_urls(issuer):
        try:
            fetched = await afetch_json(url, client=client, timeout=timeout, max_bytes=max_bytes)
        except FetchError as error:
            failure = error
            continue
        return jwks_uri_from(fetched.document, issuer)
    assert failure is not None
    raise failure
