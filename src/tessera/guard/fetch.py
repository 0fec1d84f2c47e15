"""Bounded fetch of a JSON object: https only (loopback excepted), no redirects, capped, timed.

A GET, or a form POST when ``form`` is given (token introspection).

Both twins read the body as a stream and stop at ``max_bytes``; a ``Content-Length`` above it is
refused before reading. Compressed bodies are refused (``Accept-Encoding: identity``), so the cap
bounds memory. ``timeout`` bounds each network step and the whole read.

>>> from tessera.guard.fetch import check_url
>>> str(check_url("http://127.0.0.1:8080/jwks"))
'http://127.0.0.1:8080/jwks'
>>> check_url("http://id.example/jwks")
Traceback (most recent call last):
...
tessera.guard.errors.FetchError: only https URLs (or http on loopback) are fetched
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tessera import jose

from .errors import FetchError

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 512 * 1024
_HEADERS = {"Accept": "application/json", "Accept-Encoding": "identity"}


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched JSON object and how long its server says it may be cached (``None``: unsaid)."""

    document: dict[str, Any]
    max_age: float | None


def check_url(url: str | httpx.URL) -> httpx.URL:
    """Refuse any URL but ``https``, or ``http`` to a loopback host.

    >>> check_url("https://id.example/.well-known/jwks.json").host
    'id.example'
    """
    parsed = httpx.URL(url)
    if parsed.scheme == "https" and parsed.host:
        return parsed
    if parsed.scheme == "http" and _is_loopback(parsed.host):
        return parsed
    raise FetchError("only https URLs (or http on loopback) are fetched")


def cache_max_age(headers: httpx.Headers) -> float | None:
    """Seconds a response may be cached per ``Cache-Control``, less ``Age``; ``None`` if unsaid.

    >>> cache_max_age(httpx.Headers({"Cache-Control": "public, max-age=600", "Age": "100"}))
    500.0
    >>> cache_max_age(httpx.Headers({"Cache-Control": "no-store"}))
    0.0
    """
    max_age: float | None = None
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        name = name.lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                max_age = float(int(value.strip().strip('"')))
            except ValueError:
                return 0.0
    if max_age is None:
        return None
    try:
        age = float(int(headers.get("age", "0")))
    except ValueError:
        age = 0.0
    return max(0.0, max_age - age)


def fetch_json(
    url: str | httpx.URL,
    *,
    form: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    client: httpx.Client | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Fetched:
    """GET ``url`` (or POST ``form`` to it) and parse a JSON object, within the limits above.

    >>> fetch_json("ftp://id.example/jwks")
    Traceback (most recent call last):
    ...
    tessera.guard.errors.FetchError: only https URLs (or http on loopback) are fetched
    """
    target = check_url(url)
    deadline = time.monotonic() + timeout
    own = client is None
    http = client if client is not None else httpx.Client(follow_redirects=False, timeout=timeout)
    try:
        with http.stream(
            "POST" if form is not None else "GET",
            target,
            data=form,
            auth=auth,
            headers=_HEADERS,
            follow_redirects=False,
            timeout=timeout,
        ) as response:
            _check_response(response, max_bytes)
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                _check_progress(len(body), max_bytes, deadline)
            return Fetched(_parse(bytes(body), max_bytes), cache_max_age(response.headers))
    except httpx.HTTPError as error:
        raise FetchError(f"fetch failed: {type(error).__name__}") from None
    finally:
        if own:
            http.close()


async def afetch_json(
    url: str | httpx.URL,
    *,
    form: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    client: httpx.AsyncClient | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Fetched:
    """The async twin of :func:`fetch_json`.

    >>> import asyncio
    >>> asyncio.run(afetch_json("http://id.example/jwks"))
    Traceback (most recent call last):
    ...
    tessera.guard.errors.FetchError: only https URLs (or http on loopback) are fetched
    """
    target = check_url(url)
    deadline = time.monotonic() + timeout
    own = client is None
    http = (
        client if client is not None else httpx.AsyncClient(follow_redirects=False, timeout=timeout)
    )
    try:
        async with http.stream(
            "POST" if form is not None else "GET",
            target,
            data=form,
            auth=auth,
            headers=_HEADERS,
            follow_redirects=False,
            timeout=timeout,
        ) as response:
            _check_response(response, max_bytes)
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                _check_progress(len(body), max_bytes, deadline)
            return Fetched(_parse(bytes(body), max_bytes), cache_max_age(response.headers))
    except httpx.HTTPError as error:
        raise FetchError(f"fetch failed: {type(error).__name__}") from None
    finally:
        if own:
            await http.aclose()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_response(response: httpx.Response, max_bytes: int) -> None:
    if response.is_redirect or 300 <= response.status_code < 400:
        raise FetchError("redirects are not followed")
    if response.status_code != 200:
        raise FetchError(f"unexpected status {response.status_code}")
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        raise FetchError("compressed responses are refused")
    length = response.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > max_bytes):
        raise FetchError("response too large")


def _check_progress(size: int, max_bytes: int, deadline: float) -> None:
    if size > max_bytes:
        raise FetchError("response too large")
    if time.monotonic() > deadline:
        raise FetchError("response too slow")


def _parse(body: bytes, max_bytes: int) -> dict[str, Any]:
    try:
        return jose.json.loads_object(body, max_bytes=max_bytes)
    except jose.JoseError:
        raise FetchError("response is not a JSON object") from None
