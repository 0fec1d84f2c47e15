"""Remote JWKS key sources, sync and async twins (``RemoteJwks`` on ``httpx.Client``,
``AsyncRemoteJwks`` on ``httpx.AsyncClient``), with caching, rotation and stale serving.

``get()`` returns the cached keys and fetches when they expire; ``refresh()`` is what a guard calls
on an unknown ``kid``: it fetches at most once per cooldown however many callers ask, and callers
that arrive while a fetch is running share it. A failed fetch keeps the last good keys serving
until the stale limit; after that, ``KeysUnavailable``. Only asymmetric public keys are taken from
a remote set: a secret published in a JWKS is no secret.

>>> source = RemoteJwks("https://id.example/.well-known/jwks.json", cooldown=30)
>>> source.peek() is None, source.fetches
(True, 0)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import httpx

from tessera import jose

from .discovery import adiscover, discover
from .errors import FetchError, KeysUnavailable
from .fetch import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, Fetched, afetch_json, check_url, fetch_json
from .schedule import CachePolicy, Schedule

logger = logging.getLogger("tessera.guard")

Clock = Callable[[], float]


def public_keyset(document: dict[str, Any]) -> jose.KeySet:
    """The verification keys of a fetched JWKS: asymmetric keys only, as public keys.

    >>> key = jose.Key.generate("ES256")
    >>> public_keyset({"keys": [key.public().to_jwk(), {"kty": "oct", "k": "c2VjcmV0"}]}).keys
    (Key(kty='EC', crv='P-256', alg='ES256', kid=...),)
    """
    try:
        keys = jose.KeySet.from_jwks(document)
    except jose.JoseError:
        raise FetchError("response is not a JWK Set") from None
    return jose.KeySet(key.public() for key in keys if key.kty != "oct")


class _RemoteBase:
    """State and options the twins share; the I/O lives in the subclasses."""

    def __init__(
        self,
        url: str | None = None,
        *,
        issuer: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        ttl: float = 300.0,
        min_ttl: float = 60.0,
        max_ttl: float = 3600.0,
        cooldown: float = 30.0,
        max_stale: float = 3600.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if (url is None) == (issuer is None):
            raise jose.UsageError("give exactly one of url or issuer")
        if url is not None:
            check_url(url)
        if issuer is not None:
            check_url(issuer)
        self.url = url
        self.issuer = issuer
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.fetches = 0
        self._schedule = Schedule(CachePolicy(ttl, min_ttl, max_ttl, cooldown, max_stale))
        self._clock = clock
        self._lock = threading.Lock()

    def peek(self) -> jose.KeySet | None:
        """The cached keys if they are fresh, without any I/O; else ``None``."""
        return self._schedule.fresh(self._clock())

    def _begin(self) -> None:
        self.fetches += 1
        self._schedule.start(self._clock())

    def _accept(self, fetched: Fetched) -> None:
        keys = public_keyset(fetched.document)
        with self._lock:
            self._schedule.succeed(self._clock(), fetched.document, keys, fetched.max_age)

    def _failed(self, error: FetchError) -> None:
        with self._lock:
            self._schedule.fail(self._clock())
        logger.warning(
            "jwks fetch failed: %s", error, extra={"outcome": "jwks_fetch_failed", "url": self.url}
        )

    def _serve(self) -> jose.KeySet:
        keys = self._schedule.serveable(self._clock())
        if keys is None:
            raise KeysUnavailable("no usable keys: never fetched, or stale past the limit")
        return keys

    def _wants_fetch(self, forced: bool) -> bool:
        now = self._clock()
        if forced:
            return self._schedule.may_refetch(now)
        return self._schedule.due(now)


class RemoteJwks(_RemoteBase):
    """A JWKS URL (or an issuer to discover it from), fetched with ``httpx.Client``.

    >>> RemoteJwks.discover("https://id.example").issuer
    'https://id.example'
    """

    def __init__(
        self, url: str | None = None, *, client: httpx.Client | None = None, **options: Any
    ) -> None:
        super().__init__(url, **options)
        self._client = client
        self._inflight: Future[None] | None = None

    @classmethod
    def discover(cls, issuer: str, **options: Any) -> RemoteJwks:
        """A source that finds ``jwks_uri`` in ``issuer``'s metadata at its first fetch.

        >>> RemoteJwks.discover("https://id.example").url is None
        True
        """
        return cls(issuer=issuer, **options)

    def get(self) -> jose.KeySet:
        """The current keys, fetching first if they expired (stale keys serve if that fails).

        >>> RemoteJwks("http://127.0.0.1:9/jwks", timeout=1).get()  # nothing listens there
        Traceback (most recent call last):
        ...
        tessera.guard.errors.KeysUnavailable: no usable keys: never fetched, or stale past the limit
        """
        keys = self.peek()
        if keys is not None:
            return keys
        if self._wants_fetch(forced=False) or self._inflight is not None:
            self._fetch_shared(forced=False)
        return self._serve()

    def refresh(self) -> jose.KeySet:
        """On an unknown ``kid``: fetch unless one started within the cooldown; return the keys.

        >>> source = RemoteJwks("http://127.0.0.1:9/jwks", timeout=1, cooldown=30)
        >>> for _ in range(100):
        ...     try:
        ...         source.refresh()
        ...     except KeysUnavailable:
        ...         pass
        >>> source.fetches  # one attempt, then the cooldown
        1
        """
        if self._wants_fetch(forced=True) or self._inflight is not None:
            self._fetch_shared(forced=True)
        return self._serve()

    def _fetch_shared(self, *, forced: bool) -> None:
        with self._lock:
            future = self._inflight
            leader = future is None
            if future is None:
                # Decided again under the lock: a fetch that just finished makes this one moot.
                if not self._wants_fetch(forced):
                    return
                future = self._inflight = Future()
                self._begin()
        if leader:
            try:
                self._accept(self._fetch())
            except FetchError as error:
                self._failed(error)
            finally:
                with self._lock:
                    self._inflight = None
                future.set_result(None)
        future.result()

    def _fetch(self) -> Fetched:
        client, timeout, max_bytes = self._client, self.timeout, self.max_bytes
        if self.url is None:
            assert self.issuer is not None
            self.url = discover(self.issuer, client=client, timeout=timeout, max_bytes=max_bytes)
        return fetch_json(self.url, client=client, timeout=timeout, max_bytes=max_bytes)


class AsyncRemoteJwks(_RemoteBase):
    """The async twin of :class:`RemoteJwks`, fetching with ``httpx.AsyncClient``.

    >>> AsyncRemoteJwks("https://id.example/jwks").peek() is None
    True
    """

    def __init__(
        self, url: str | None = None, *, client: httpx.AsyncClient | None = None, **options: Any
    ) -> None:
        super().__init__(url, **options)
        self._client = client
        self._inflight: asyncio.Future[None] | None = None

    @classmethod
    def discover(cls, issuer: str, **options: Any) -> AsyncRemoteJwks:
        """A source that finds ``jwks_uri`` in ``issuer``'s metadata at its first fetch.

        >>> AsyncRemoteJwks.discover("https://id.example").issuer
        'https://id.example'
        """
        return cls(issuer=issuer, **options)

    async def get(self) -> jose.KeySet:
        """The current keys, fetching first if they expired (stale keys serve if that fails).

        >>> import asyncio
        >>> asyncio.run(AsyncRemoteJwks("http://127.0.0.1:9/jwks", timeout=1).get())
        Traceback (most recent call last):
        ...
        tessera.guard.errors.KeysUnavailable: no usable keys: never fetched, or stale past the limit
        """
        keys = self.peek()
        if keys is not None:
            return keys
        if self._wants_fetch(forced=False) or self._joinable() is not None:
            await self._fetch_shared()
        return self._serve()

    async def refresh(self) -> jose.KeySet:
        """On an unknown ``kid``: fetch unless one started within the cooldown; return the keys.

        >>> import asyncio
        >>> source = AsyncRemoteJwks("http://127.0.0.1:9/jwks", timeout=1, cooldown=30)
        >>> for _ in range(3):
        ...     try:
        ...         asyncio.run(source.refresh())
        ...     except Exception as error:
        ...         print(type(error).__name__)
        KeysUnavailable
        KeysUnavailable
        KeysUnavailable
        >>> source.fetches  # one attempt, then the cooldown
        1
        """
        if self._wants_fetch(forced=True) or self._joinable() is not None:
            await self._fetch_shared()
        return self._serve()

    def _joinable(self) -> asyncio.Future[None] | None:
        future = self._inflight
        if future is not None and future.get_loop() is asyncio.get_running_loop():
            return future
        return None

    async def _fetch_shared(self) -> None:
        future = self._joinable()
        if future is not None:
            await asyncio.shield(future)
            return
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            self._inflight = future
            self._begin()
        try:
            self._accept(await self._fetch())
        except FetchError as error:
            self._failed(error)
        finally:
            future.set_result(None)
            with self._lock:
                if self._inflight is future:
                    self._inflight = None

    async def _fetch(self) -> Fetched:
        client, timeout, max_bytes = self._client, self.timeout, self.max_bytes
        if self.url is None:
            assert self.issuer is not None
            self.url = await adiscover(
                self.issuer, client=client, timeout=timeout, max_bytes=max_bytes
            )
        return await afetch_json(self.url, client=client, timeout=timeout, max_bytes=max_bytes)
