"""JSON Web Tokens (RFC 7519): encode, and a :class:`Verifier` that holds a policy and decodes.

The policy travels with the call: ``decode(token, key, algorithms=[...], issuer=..., audience=...)``
checks the signature first, then every registered claim, and returns the claims as a ``dict``.
A :class:`Verifier` decides the policy once and reuses it, which is what a hot path wants.

>>> from tessera import jose
>>> key = jose.Key.generate("ES256")
>>> token = jose.jwt.encode({"sub": "ada", "iss": "https://id.example", "exp": 2**31}, key)
>>> verifier = jose.Verifier(key.public(), algorithms=["ES256"], issuer="https://id.example")
>>> verifier.verify(token)["sub"]
'ada'
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from time import time
from typing import Any

import orjson

from . import b64, json
from .algorithms import Verify
from .claims import NUMERIC_DATES, check_registered
from .errors import (
    ClaimError,
    ExpiredToken,
    InvalidAudience,
    InvalidIssuer,
    InvalidSignature,
    InvalidType,
    IssuedInTheFuture,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    UsageError,
)
from .jws import (
    MAX_TOKEN_BYTES,
    allowed_algorithms,
    check_header,
    parse_header,
    protected_header,
    select_verifier,
)
from .keys import Key, KeySet, as_keys

KeyLike = Key | KeySet | Mapping[str, Any] | str | bytes
ClaimsCheck = Callable[[dict[str, Any]], None]


class AnyAudience:
    """The type of :data:`ANY_AUDIENCE`: the explicit opt-out of the audience check, for a
    party that serves every audience (an issuer reading its own tokens). Never the default."""

    def __repr__(self) -> str:
        return "ANY_AUDIENCE"


ANY_AUDIENCE = AnyAudience()
_HEADER_CACHE_SIZE = 64


def encode(
    claims: Mapping[str, Any],
    key: Key | str | bytes | Mapping[str, Any],
    alg: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign a claims set into a compact JWT. ``alg`` defaults to the key's.

    ``datetime`` values of ``exp``, ``iat`` and ``nbf`` become epoch seconds. A registered claim
    of the wrong type is a ``UsageError``: nothing is minted that a verifier would refuse.

    >>> key = Key.generate("HS256")
    >>> encode({"sub": "ada"}, key).count(".")
    2
    >>> encode({"sub": "ada", "exp": None}, key)
    Traceback (most recent call last):
    ...
    tessera.jose.errors.UsageError: cannot sign: exp must be a NumericDate
    """
    if type(key) is not Key:
        coerced = as_keys(key)
        if not isinstance(coerced, Key):
            raise UsageError("signing needs one key")
        key = coerced
    alg = alg or key.default_alg
    header_segment = _cached_header_segment(key, alg, headers)
    if type(claims) is not dict:
        if not isinstance(claims, Mapping):
            raise UsageError("claims must be a mapping")
        claims = dict(claims)
    for name in NUMERIC_DATES:
        if isinstance(claims.get(name), datetime):
            claims = {**claims, name: int(claims[name].timestamp())}
    try:
        check_registered(claims)
    except ClaimError as error:
        raise UsageError(f"cannot sign: {error}") from None
    try:
        body = orjson.dumps(claims)
    except TypeError:
        raise UsageError("claims are not JSON-serialisable") from None
    signing_input = header_segment + b"." + b64.encode(body)
    signature = key.signer(alg)(signing_input)
    return (signing_input + b"." + b64.encode(signature)).decode("ascii")


def decode(
    token: str | bytes,
    key: KeyLike,
    *,
    algorithms: Collection[str],
    issuer: str | Collection[str] | None = None,
    audience: str | Collection[str] | None = None,
    leeway: float = 0,
    typ: str | None = None,
    require: Iterable[str] = ("exp",),
    max_age: float | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify a JWT and return its claims; the signature first, then every claim.

    >>> key = Key.generate("HS256")
    >>> decode(encode({"sub": "ada", "exp": 2**31}, key), key, algorithms=["HS256"])["sub"]
    'ada'
    """
    verifier = Verifier(
        key,
        algorithms=algorithms,
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        typ=typ,
        require=require,
        max_age=max_age,
    )
    return verifier.verify(token, now=now)


def decode_unverified(token: str | bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """UNVERIFIED: the header and claims of a JWT, for display only — nothing is checked.

    Never use the result to make a decision; ``decode`` or a ``Verifier`` is for that.

    >>> key = Key.generate("HS256")
    >>> decode_unverified(encode({"sub": "ada"}, key))[1]
    {'sub': 'ada'}
    """
    raw = token.encode("ascii", "replace") if isinstance(token, str) else bytes(token)
    if len(raw) > MAX_TOKEN_BYTES:
        raise MalformedToken("token too large")
    parts = raw.split(b".")
    if len(parts) != 3:
        raise MalformedToken("a JWT has three parts")
    return parse_header(parts[0]), json.loads_object(b64.decode(parts[1]))


class Verifier:
    """A verification policy decided once: keys, algorithms, issuer, audience, typ, times.

    ``cache=N`` keeps up to N verified tokens (LRU, thread-safe); a hit re-checks ``exp``,
    ``nbf`` and ``max_age`` against the clock and runs ``check`` again, and failures are never
    cached. ``check`` is called with the claims after every successful verification (a
    revocation hook raises an ``InvalidToken`` to refuse).

    >>> key = Key.generate("EdDSA")
    >>> verifier = Verifier(key, algorithms=["EdDSA"], require=(), cache=1024)
    >>> verifier.verify(encode({"sub": "ada"}, key))
    {'sub': 'ada'}
    """

    __slots__ = (
        "_any_audience",
        "_audiences",
        "_cache",
        "_cache_size",
        "_check",
        "_headers",
        "_issuers",
        "_keys",
        "_leeway",
        "_lock",
        "_max_age",
        "_max_token_bytes",
        "_require",
        "_typ",
        "algorithms",
    )

    def __init__(
        self,
        key: KeyLike,
        *,
        algorithms: Collection[str],
        issuer: str | Collection[str] | None = None,
        audience: str | Collection[str] | AnyAudience | None = None,
        leeway: float = 0,
        typ: str | None = None,
        require: Iterable[str] = ("exp",),
        max_age: float | None = None,
        cache: int = 0,
        check: ClaimsCheck | None = None,
        max_token_bytes: int = MAX_TOKEN_BYTES,
    ) -> None:
        self.algorithms = allowed_algorithms(algorithms)
        self._keys = as_keys(key)
        usable = (
            self._keys.algorithms()
            if isinstance(self._keys, Key)
            else frozenset().union(*(member.algorithms() for member in self._keys))
        )
        if isinstance(self._keys, Key) and not self.algorithms & usable:
            raise UsageError("no allowed algorithm fits the key")
        self._issuers = _string_set(issuer, "issuer")
        self._any_audience = audience is ANY_AUDIENCE
        self._audiences = (
            None if isinstance(audience, AnyAudience) else _string_set(audience, "audience")
        )
        if isinstance(require, str) or not all(isinstance(name, str) for name in require):
            raise UsageError("require is a list of claim names")
        self._require = tuple(require)
        if not isinstance(leeway, int | float) or leeway < 0:
            raise UsageError("leeway must be a non-negative number of seconds")
        self._leeway = leeway
        if max_age is not None and (not isinstance(max_age, int | float) or max_age < 0):
            raise UsageError("max_age must be a non-negative number of seconds")
        self._max_age = max_age
        self._typ = _normalise_typ(typ) if typ is not None else None
        self._max_token_bytes = max_token_bytes
        self._headers: dict[bytes, Verify] = {}
        self._cache_size = cache
        self._cache: OrderedDict[str | bytes, dict[str, Any]] | None = (
            OrderedDict() if cache > 0 else None
        )
        self._lock = threading.Lock()
        self._check = check

    def verify(self, token: str | bytes, *, now: float | None = None) -> dict[str, Any]:
        """Verify ``token`` under this policy and return its claims (a new ``dict``).

        >>> key = Key.generate("HS256")
        >>> Verifier(key, algorithms=["HS256"]).verify(encode({"exp": 1}, key))
        Traceback (most recent call last):
        ...
        tessera.jose.errors.ExpiredToken: token expired
        """
        cache = self._cache
        if cache is not None:
            with self._lock:
                cached = cache.get(token)
                if cached is not None:
                    cache.move_to_end(token)
            if cached is not None:
                self._check_times(cached, time() if now is None else now)
                claims = dict(cached)
                if self._check is not None:
                    self._check(claims)
                return claims

        if type(token) is str:
            if len(token) > self._max_token_bytes:
                raise MalformedToken("token too large")
            try:
                raw = token.encode("ascii")
            except UnicodeEncodeError:
                raise MalformedToken("token is not ASCII") from None
        elif isinstance(token, bytes):
            if len(token) > self._max_token_bytes:
                raise MalformedToken("token too large")
            raw = token
        else:
            raise MalformedToken("token must be str or bytes")
        first = raw.find(b".")
        last = raw.rfind(b".")
        if first == last or raw.find(b".", first + 1) != last:
            raise MalformedToken("a JWT has three parts")
        header_segment = raw[:first]
        verify_signature = self._headers.get(header_segment)
        if verify_signature is None:
            verify_signature = self._prepare(header_segment)
        # The signature is checked before anything in the payload is read.
        if not verify_signature(raw[:last], b64.decode(raw[last + 1 :])):
            raise InvalidSignature("signature verification failed")
        claims = json.loads(b64.decode(raw[first + 1 : last]))
        if type(claims) is not dict:
            raise MalformedToken("claims are not a JSON object")
        self._validate(claims, time() if now is None else now)
        if self._check is not None:
            self._check(claims)
        if cache is not None:
            with self._lock:
                cache[token] = dict(claims)
                if len(cache) > self._cache_size:
                    cache.popitem(last=False)
        return claims

    def cache_info(self) -> tuple[int, int]:
        """How many verified tokens the cache holds now, and at most.

        >>> Verifier(Key.generate("HS256"), algorithms=["HS256"], cache=8).cache_info()
        (0, 8)
        """
        cache = self._cache
        return (len(cache) if cache is not None else 0, self._cache_size)

    def _prepare(self, header_segment: bytes) -> Verify:
        header = parse_header(header_segment)
        check_header(header, allow_unencoded=False)
        if self._typ is not None:
            typ = header.get("typ")
            if type(typ) is not str or _normalise_typ(typ) != self._typ:
                raise InvalidType("unexpected typ")
        verify_signature = select_verifier(self._keys, header, self.algorithms)
        if len(self._headers) >= _HEADER_CACHE_SIZE:
            self._headers.clear()
        self._headers[header_segment] = verify_signature
        return verify_signature

    def _validate(self, claims: dict[str, Any], now: float) -> None:
        check_registered(claims)  # types first: a null is never "absent"
        for name in self._require:
            if claims.get(name) is None:
                raise MissingClaim("required claim missing", name)
        self._check_times(claims, now)
        issuers = self._issuers
        if issuers is not None:
            iss = claims.get("iss")
            if iss is None:
                raise MissingClaim("required claim missing", "iss")
            if iss not in issuers:
                raise InvalidIssuer("unexpected issuer", "iss")
        audiences = self._audiences
        aud = claims.get("aud")
        if audiences is None:
            if aud is not None and not self._any_audience:
                raise InvalidAudience("token has an audience but none was expected", "aud")
        elif aud is None:
            raise MissingClaim("required claim missing", "aud")
        elif type(aud) is str:
            if aud not in audiences:
                raise InvalidAudience("unexpected audience", "aud")
        elif audiences.isdisjoint(aud):
            raise InvalidAudience("unexpected audience", "aud")

    def _check_times(self, claims: dict[str, Any], now: float) -> None:
        # Only claims that passed check_registered reach here: each time is a NumericDate.
        leeway = self._leeway
        exp = claims.get("exp")
        if exp is not None and now >= exp + leeway:
            raise ExpiredToken("token expired", "exp")
        nbf = claims.get("nbf")
        if nbf is not None and nbf > now + leeway:
            raise NotYetValid("token not valid yet", "nbf")
        iat = claims.get("iat")
        if iat is not None:
            if iat > now + leeway:
                raise IssuedInTheFuture("token issued in the future", "iat")
            if self._max_age is not None and now - iat > self._max_age + leeway:
                raise ExpiredToken("token older than max_age", "iat")
        elif self._max_age is not None:
            raise MissingClaim("required claim missing", "iat")


def _cached_header_segment(key: Key, alg: str, headers: Mapping[str, Any] | None) -> bytes:
    """The encoded header of a JWT ``key`` signs with ``alg`` and ``headers``, built once per
    key for each such pair of flat headers (an issuer's are the same on every token); headers
    holding a list or a mapping are built each time."""
    cache_key: tuple[Any, ...] = (alg,)
    if headers is not None:  # typed: 0 and False are equal, but only one is a valid b64
        cache_key += tuple((name, type(value), value) for name, value in headers.items())
    try:
        header_segment = key._encoded_headers.get(cache_key)
        kept = True
    except TypeError:  # a value that is not hashable (a list, a mapping)
        header_segment, kept = None, False
    if not kept:
        return _header_segment(key, alg, headers)
    if header_segment is None:
        header_segment = _header_segment(key, alg, headers)
        if len(key._encoded_headers) >= _HEADER_CACHE_SIZE:
            key._encoded_headers.clear()
        key._encoded_headers[cache_key] = header_segment
    return header_segment


def _header_segment(key: Key, alg: str, headers: Mapping[str, Any] | None) -> bytes:
    segment, _, _ = protected_header(key, alg, headers, typ="JWT", allow_unencoded=False)
    key.signer(alg)  # refuse a key that cannot sign with alg before anything is built
    return segment


def _string_set(value: str | Collection[str] | None, name: str) -> frozenset[str] | None:
    if value is None:
        return None
    values = frozenset((value,)) if isinstance(value, str) else frozenset(value)
    if not values or not all(isinstance(item, str) for item in values):
        raise UsageError(f"{name} must be a string or a non-empty set of strings")
    return values


def _normalise_typ(typ: str) -> str:
    typ = typ.lower()
    return typ[len("application/") :] if typ.startswith("application/") else typ
