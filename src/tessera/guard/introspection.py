"""Revocation by asking the issuer (RFC 7662 token introspection), with a short cache.

For sensitive routes where no Redis is shared: the guard posts the token to the issuer's
introspection endpoint (client authentication by HTTP Basic) and refuses it unless the answer
is ``"active": true``. Answers are cached per token for ``cache_ttl`` seconds (never past the
token's ``exp``); an inactive answer is final and kept until ``exp``. An endpoint that cannot be
reached or answers nonsense raises ``RevocationUnavailable``, so sensitive routes fail closed.
Sync and async twins: :class:`Introspection` (``httpx.Client``), :class:`AsyncIntrospection`.

>>> status = Introspection("https://id.example/oauth/introspect", client_id="api",
...                        client_secret="s3cret", cache_ttl=10)
>>> status.cache_ttl
10.0
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import httpx

from tessera import jose

from .errors import FetchError, RevocationUnavailable
from .fetch import DEFAULT_TIMEOUT, Fetched, afetch_json, check_url, fetch_json

MAX_ANSWER_BYTES = 64 * 1024


class _Answers:
    """A bounded LRU of introspection answers keyed by a hash of the token."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl = float(ttl)
        self.size = size
        self._entries: OrderedDict[bytes, tuple[bool, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bool | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= time.time():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: bytes, active: bool, claims: Mapping[str, Any]) -> None:
        exp = claims.get("exp")
        horizon = float(exp) if jose.claims.is_numeric_date(exp) else time.time() + self.ttl
        until = horizon if not active else min(horizon, time.time() + self.ttl)
        with self._lock:
            self._entries[key] = (active, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class _IntrospectionBase:
    def __init__(
        self,
        endpoint: str,
        *,
        client_id: str,
        client_secret: str,
        cache_ttl: float = 10.0,
        cache_size: int = 10_000,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        check_url(endpoint)
        self.endpoint = endpoint
        self.cache_ttl = float(cache_ttl)
        self.timeout = timeout
        self.requests = 0
        self._auth = (client_id, client_secret)
        self._answers = _Answers(cache_ttl, cache_size)

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("ascii", "replace")).digest()

    @staticmethod
    def _form(token: str) -> dict[str, str]:
        return {"token": token, "token_type_hint": "access_token"}

    def _read(self, fetched: Fetched) -> bool:
        active = fetched.document.get("active")
        if type(active) is not bool:
            raise RevocationUnavailable("introspection answer has no boolean 'active'")
        return active


class Introspection(_IntrospectionBase):
    """A :class:`~tessera.guard.revocation.TokenStatus` asking an RFC 7662 endpoint.

    >>> Introspection("http://id.example/introspect", client_id="a", client_secret="b")
    Traceback (most recent call last):
    ...
    tessera.guard.errors.FetchError: only https URLs (or http on loopback) are fetched
    """

    def __init__(
        self, endpoint: str, *, client: httpx.Client | None = None, **options: Any
    ) -> None:
        super().__init__(endpoint, **options)
        self._client = client

    def is_active(self, token: str, claims: Mapping[str, Any]) -> bool:
        """Whether the issuer says ``token`` is active (cached briefly).

        >>> status = Introspection("http://127.0.0.1:9/introspect", client_id="a",
        ...                        client_secret="b", timeout=1)
        >>> status.is_active("a.b.c", {})  # nothing listens on port 9: fail closed
        Traceback (most recent call last):
        ...
        tessera.guard.errors.RevocationUnavailable: fetch failed: ConnectError
        """
        key = self._key(token)
        cached = self._answers.get(key)
        if cached is not None:
            return cached
        self.requests += 1
        try:
            fetched = fetch_json(
                self.endpoint,
                form=self._form(token),
                auth=self._auth,
                client=self._client,
                timeout=self.timeout,
                max_bytes=MAX_ANSWER_BYTES,
            )
        except FetchError as error:
            raise RevocationUnavailable(str(error)) from None
        active = self._read(fetched)
        self._answers.put(key, active, claims)
        return active


class AsyncIntrospection(_IntrospectionBase):
    """The async twin of :class:`Introspection`.

    >>> AsyncIntrospection("https://id.example/introspect", client_id="a",
    ...                    client_secret="b").endpoint
    'https://id.example/introspect'
    """

    def __init__(
        self, endpoint: str, *, client: httpx.AsyncClient | None = None, **options: Any
    ) -> None:
        super().__init__(endpoint, **options)
        self._client = client

    async def is_active(self, token: str, claims: Mapping[str, Any]) -> bool:
        """Whether the issuer says ``token`` is active (cached briefly).

        >>> import asyncio
        >>> status = AsyncIntrospection("http://127.0.0.1:9/introspect", client_id="a",
        ...                             client_secret="b", timeout=1)
        >>> asyncio.run(status.is_active("a.b.c", {}))
        Traceback (most recent call last):
        ...
        tessera.guard.errors.RevocationUnavailable: fetch failed: ConnectError
        """
        key = self._key(token)
        cached = self._answers.get(key)
        if cached is not None:
            return cached
        self.requests += 1
        try:
            fetched = await afetch_json(
                self.endpoint,
                form=self._form(token),
                auth=self._auth,
                client=self._client,
                timeout=self.timeout,
                max_bytes=MAX_ANSWER_BYTES,
            )
        except FetchError as error:
            raise RevocationUnavailable(str(error)) from None
        active = self._read(fetched)
        self._answers.put(key, active, claims)
        return active
