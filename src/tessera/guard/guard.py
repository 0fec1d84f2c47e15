"""The guard: keys from a source, one ``jose.Verifier`` per key-set version, revocation, rules.

``Guard.authenticate(token, rule)`` verifies the token (signature, ``exp``/``nbf``/``iat``,
``iss``, ``aud``, ``typ``), checks revocation, applies the route's :class:`Rule`, logs the
decision, and returns the :class:`Principal` — or raises a typed ``GuardError`` that
``tessera.guard.answer`` turns into an RFC 6750 reply. On an unknown ``kid`` the guard asks its key
source to look again (the source limits that to once per cooldown) and retries once.

>>> from tessera import jose
>>> key = jose.Key.generate("ES256")
>>> guard = Guard(keys=key.public(), issuer="https://id.example", audience="orders",
...               algorithms=["ES256"])
>>> token = jose.jwt.encode({"sub": "ada", "iss": "https://id.example", "aud": "orders",
...                          "exp": 2**31, "scope": "orders:read"}, key)
>>> guard.authenticate(token, rule(scopes=["orders:read"])).sub
'ada'
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal, cast

from tessera import jose

from .decisions import record_decision
from .errors import (
    GuardError,
    KeysUnavailable,
    MissingToken,
    RevocationUnavailable,
    TokenRefused,
    TokenRevoked,
    Unavailable,
)
from .keysource import AsyncKeySource, KeySource, as_key_source
from .policy import AUTHENTICATED, Rule, rule
from .principal import Principal
from .revocation import AsyncTokenStatus, RevocationList, TokenStatus, is_revoked

Revocation = RevocationList | TokenStatus | AsyncTokenStatus
KeysArgument = KeySource | AsyncKeySource | jose.Key | jose.KeySet | Mapping[str, Any]


class Guard:
    """A token policy for one API, decided once.

    ``revocation`` is checked on every request (``check_revocation="always"``) or only on
    sensitive routes (``"sensitive"``). When it cannot answer, sensitive routes fail closed
    (503) and other routes follow ``on_revocation_unavailable`` (``"deny"`` or ``"allow"``).
    ``cache`` keeps that many verified tokens (the verifier's LRU); revocation and rules are
    still checked on every hit. ``audience=jose.ANY_AUDIENCE`` accepts every audience: only for
    the issuer's own routes, which serve every token it mints (``None`` accepts none).

    >>> from tessera import jose
    >>> Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"]).realm
    'api'
    """

    def __init__(
        self,
        *,
        keys: KeysArgument,
        issuer: str | Collection[str] | None,
        audience: str | Collection[str] | jose.AnyAudience | None,
        algorithms: Collection[str],
        typ: str | None = None,
        leeway: float = 0,
        require: Iterable[str] = ("exp",),
        max_age: float | None = None,
        revocation: Revocation | None = None,
        check_revocation: Literal["always", "sensitive"] = "always",
        on_revocation_unavailable: Literal["deny", "allow"] = "deny",
        cache: int = 0,
        realm: str = "api",
        tenant_claim: str = "tenant",
        roles_claim: str = "roles",
    ) -> None:
        if check_revocation not in ("always", "sensitive"):
            raise jose.UsageError("check_revocation is 'always' or 'sensitive'")
        if on_revocation_unavailable not in ("deny", "allow"):
            raise jose.UsageError("on_revocation_unavailable is 'deny' or 'allow'")
        self.source = as_key_source(keys)
        self.realm = realm
        self.revocation = revocation
        self._policy: dict[str, Any] = {
            "algorithms": algorithms,
            "issuer": issuer,
            "audience": audience,
            "typ": typ,
            "leeway": leeway,
            "require": tuple(require),
            "max_age": max_age,
            "cache": cache,
        }
        # Refuse a bad policy now, not at the first request.
        jose.Verifier(jose.KeySet([]), **self._policy)
        self._async_source = inspect.iscoroutinefunction(type(self.source).get)
        self._sync_source = None if self._async_source else cast(KeySource, self.source)
        self._async_status = revocation is not None and inspect.iscoroutinefunction(
            getattr(type(revocation), "is_active", None)
        )
        self._revocation_list = isinstance(revocation, RevocationList)
        self._check_always = check_revocation == "always"
        self._allow_unknown = on_revocation_unavailable == "allow"
        self._tenant_claim = tenant_claim
        self._roles_claim = roles_claim
        self._current: tuple[jose.KeySet, jose.Verifier] | None = None
        # With a token cache, the Principal read from a cached token's claims is kept too.
        self._principals: dict[str, Principal] | None = {} if cache > 0 else None
        self._principals_max = cache
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- entry points

    def authenticate(
        self,
        token: str | None,
        rule: Rule = AUTHENTICATED,
        *,
        tenant: str | None = None,
        route: str | None = None,
    ) -> Principal:
        """Verify ``token`` and apply ``rule``; ``tenant`` is the route's tenant value, if any.

        >>> Guard(keys={"keys": []}, issuer=None, audience=None,
        ...       algorithms=["ES256"]).authenticate(None)
        Traceback (most recent call last):
        ...
        tessera.guard.errors.MissingToken: missing_token
        """
        principal: Principal | None = None
        try:
            if token is None:
                raise MissingToken()
            if self._async_source or self._async_status:
                raise jose.UsageError("an async key source or revocation needs authenticate_async")
            claims = self._verify(token)
            principal = self._principal(token, claims)
            if self._wants_revocation(rule):
                self._check_revocation(token, claims, rule, self._status_sync)
            rule.check(principal, tenant=tenant)
        except GuardError as error:
            self.record(error, principal=principal, route=route)
            raise
        record_decision("allow", "ok", sub=principal.sub, jti=principal.jti, route=route)
        return principal

    async def authenticate_async(
        self,
        token: str | None,
        rule: Rule = AUTHENTICATED,
        *,
        tenant: str | None = None,
        route: str | None = None,
    ) -> Principal:
        """The async twin of :meth:`authenticate`; works with sync and async sources alike.

        >>> import asyncio
        >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
        >>> asyncio.run(guard.authenticate_async("a.b.c")).sub
        Traceback (most recent call last):
        ...
        tessera.guard.errors.TokenRefused: malformed
        """
        principal: Principal | None = None
        try:
            if token is None:
                raise MissingToken()
            claims = await self._verify_async(token)
            principal = self._principal(token, claims)
            if self._wants_revocation(rule):
                if self._async_status:
                    await self._check_revocation_async(token, claims, rule)
                else:
                    self._check_revocation(token, claims, rule, self._status_sync)
            rule.check(principal, tenant=tenant)
        except GuardError as error:
            self.record(error, principal=principal, route=route)
            raise
        record_decision("allow", "ok", sub=principal.sub, jti=principal.jti, route=route)
        return principal

    async def authorize_async(
        self,
        principal: Principal,
        token: str,
        rule: Rule,
        *,
        tenant: str | None = None,
        route: str | None = None,
    ) -> None:
        """Apply ``rule`` to an already authenticated ``principal`` (a sensitive rule checks
        revocation again). For adapters that authenticate first and authorize per route.

        >>> import asyncio
        >>> guard = Guard(keys={"keys": []}, issuer=None, audience=None, algorithms=["ES256"])
        >>> asyncio.run(guard.authorize_async(Principal.from_claims({"sub": "a"}), "t",
        ...                                    rule(roles=["x"])))
        Traceback (most recent call last):
        ...
        tessera.guard.errors.Forbidden: insufficient_role
        """
        try:
            if rule.sensitive and self.revocation is not None:
                claims = principal.claims
                if self._async_status:
                    await self._check_revocation_async(token, claims, rule)
                else:
                    self._check_revocation(token, claims, rule, self._status_sync)
            rule.check(principal, tenant=tenant)
        except GuardError as error:
            self.record(error, principal=principal, route=route)
            raise

    def record(
        self, error: GuardError, *, principal: Principal | None = None, route: str | None = None
    ) -> None:
        """Log a refusal decided outside :meth:`authenticate` (e.g. by the transport).

        >>> Guard(keys={"keys": []}, issuer=None, audience=None,
        ...       algorithms=["ES256"]).record(MissingToken(), route="/orders")
        """
        sub = principal.sub if principal is not None else None
        jti = principal.jti if principal is not None else None
        record_decision("deny", error.code, sub=sub, jti=jti, route=route)

    # ---------------------------------------------------------------- verification

    def _verifier(self, keys: jose.KeySet) -> jose.Verifier:
        current = self._current
        if current is not None and current[0] is keys:
            return current[1]
        with self._lock:
            current = self._current
            if current is None or current[0] is not keys:
                current = (keys, jose.Verifier(keys, **self._policy))
                self._current = current
            return current[1]

    def _verify(self, token: str) -> dict[str, Any]:
        source = self._sync_source
        assert source is not None
        try:
            keys = source.get()
            try:
                return self._verifier(keys).verify(token)
            except jose.KeyNotFound:
                fresh = source.refresh()
                if fresh is keys:
                    raise
                return self._verifier(fresh).verify(token)
        except jose.JoseError as error:
            raise TokenRefused.from_jose(error) from None
        except KeysUnavailable:
            raise Unavailable("keys_unavailable") from None

    async def _verify_async(self, token: str) -> dict[str, Any]:
        source = self.source
        try:
            keys = source.peek()
            if keys is None:
                keys = await self._source_call("get")
            try:
                return self._verifier(keys).verify(token)
            except jose.KeyNotFound:
                fresh = await self._source_call("refresh")
                if fresh is keys:
                    raise
                return self._verifier(fresh).verify(token)
        except jose.JoseError as error:
            raise TokenRefused.from_jose(error) from None
        except KeysUnavailable:
            raise Unavailable("keys_unavailable") from None

    async def _source_call(self, name: str) -> jose.KeySet:
        method = getattr(self.source, name)
        if self._async_source:
            keys: jose.KeySet = await method()
            return keys
        return await asyncio.to_thread(method)

    def _principal(self, token: str, claims: Mapping[str, Any]) -> Principal:
        principals = self._principals
        if principals is not None:
            known = principals.get(token)
            if known is not None:
                return known
        try:
            principal = Principal.from_claims(
                claims, tenant_claim=self._tenant_claim, roles_claim=self._roles_claim
            )
        except jose.ClaimError as error:
            raise TokenRefused.from_jose(error) from None
        if principals is not None:
            if len(principals) >= self._principals_max:
                principals.clear()
            principals[token] = principal
        return principal

    # ---------------------------------------------------------------- revocation

    def _wants_revocation(self, rule: Rule) -> bool:
        return self.revocation is not None and (self._check_always or rule.sensitive)

    def _status_sync(self, token: str, claims: Mapping[str, Any]) -> bool:
        revocation = self.revocation
        if self._revocation_list:
            return is_revoked(cast(RevocationList, revocation), claims)
        return not revocation.is_active(token, claims)  # type: ignore[union-attr]

    def _check_revocation(
        self, token: str, claims: Mapping[str, Any], rule: Rule, status: Any
    ) -> None:
        try:
            revoked = status(token, claims)
        except RevocationUnavailable:
            if rule.sensitive or not self._allow_unknown:
                raise Unavailable("revocation_unavailable") from None
            return
        if revoked:
            raise TokenRevoked()

    async def _check_revocation_async(
        self, token: str, claims: Mapping[str, Any], rule: Rule
    ) -> None:
        revocation = self.revocation
        assert revocation is not None
        try:
            active = await revocation.is_active(token, claims)  # type: ignore[union-attr,misc]
        except RevocationUnavailable:
            if rule.sensitive or not self._allow_unknown:
                raise Unavailable("revocation_unavailable") from None
            return
        if not active:
            raise TokenRevoked()


__all__ = ["Guard", "Principal", "Rule", "rule"]
