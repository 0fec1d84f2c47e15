"""JWS (RFC 7515): compact and JSON serializations, detached and unencoded (RFC 7797) payloads.

The algorithm comes from the caller's allow-list and the key, never from the token alone; keys
named by the header (``jwk``, ``jku``, ``x5u``, ``x5c``) are never used; unknown ``crit`` names
are refused.

>>> from tessera import jose
>>> key = jose.Key.generate("ES256")
>>> compact = jose.jws.sign(b"hello", key)
>>> jose.jws.verify(compact, key, algorithms=["ES256"])
b'hello'
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from . import b64, json
from .algorithms import ALGORITHMS, Verify
from .errors import (
    AlgorithmNotAllowed,
    InvalidKey,
    InvalidSignature,
    KeyNotFound,
    MalformedToken,
    UnsupportedHeader,
    UsageError,
)
from .keys import Key, KeySet, as_keys

MAX_TOKEN_BYTES = 64 * 1024
MAX_HEADER_BYTES = 4 * 1024
MAX_JSON_SIGNATURES = 16
# Names RFC 7515 §4.1 defines; they may not be listed in "crit" (§4.1.11).
_REGISTERED = frozenset(
    {
        "alg",
        "jku",
        "jwk",
        "kid",
        "x5u",
        "x5c",
        "x5t",
        "x5t#S256",
        "typ",
        "cty",
        "crit",
        "enc",
        "zip",
    }
)
_UNDERSTOOD_CRIT = frozenset({"b64"})
# A key set without kid match tries at most this many keys, so a token cannot make us try them all.
_MAX_CANDIDATES = 4


def allowed_algorithms(algorithms: Collection[str] | None) -> frozenset[str]:
    """Validate an algorithm allow-list: non-empty, known names only, never ``none``.

    >>> sorted(allowed_algorithms(["RS256", "ES256"]))
    ['ES256', 'RS256']
    >>> allowed_algorithms([])
    Traceback (most recent call last):
    ...
    tessera.jose.errors.UsageError: an algorithm allow-list is required
    """
    if not algorithms or isinstance(algorithms, str | bytes):
        raise UsageError("an algorithm allow-list is required")
    names = frozenset(algorithms)
    unknown = [name for name in names if name not in ALGORITHMS]
    if unknown:
        raise UsageError("unsupported algorithm in the allow-list")
    return names


def sign(
    payload: bytes,
    key: Key,
    alg: str | None = None,
    headers: Mapping[str, Any] | None = None,
    *,
    detached: bool = False,
) -> str:
    """Sign ``payload`` and return a JWS in compact serialization.

    ``headers={"b64": False}`` makes an RFC 7797 unencoded payload (``crit`` is added for you);
    a header given as ``None`` is left out (``{"kid": None}`` signs without a kid).

    >>> key = Key.generate("HS256")
    >>> sign(b"$.02", key, headers={"b64": False}, detached=True).count("..")
    1
    """
    header_segment, alg, encoded = protected_header(key, alg, headers)
    payload_segment = b64.encode(payload) if encoded else bytes(payload)
    if not encoded and not detached and b"." in payload_segment:
        raise UsageError("an unencoded payload with '.' must be detached")
    signature = key.signer(alg)(header_segment + b"." + payload_segment)
    shown = b"" if detached else payload_segment
    try:
        return (header_segment + b"." + shown + b"." + b64.encode(signature)).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("an unencoded payload must be UTF-8 or detached") from None


def verify(
    compact: str | bytes,
    key: Key | KeySet | Mapping[str, Any] | str | bytes,
    *,
    algorithms: Collection[str],
    detached_payload: bytes | None = None,
) -> bytes:
    """Verify a compact JWS and return its payload bytes.

    >>> key = Key.generate("EdDSA")
    >>> verify(sign(b"data", key), key.public(), algorithms=["EdDSA"])
    b'data'
    """
    allowed = allowed_algorithms(algorithms)
    keys = as_keys(key)
    token = _as_bytes(compact)
    parts = token.split(b".")
    if len(parts) != 3:
        raise MalformedToken("a compact JWS has three parts")
    header_segment, payload_segment, signature_segment = parts
    header = parse_header(header_segment)
    encoded = check_header(header, allow_unencoded=True)
    verify_signature = select_verifier(keys, header, allowed)
    if detached_payload is not None:
        if payload_segment:
            raise MalformedToken("a detached JWS has an empty payload part")
        payload_segment = b64.encode(detached_payload) if encoded else bytes(detached_payload)
    signature = b64.decode(signature_segment)
    if not verify_signature(header_segment + b"." + payload_segment, signature):
        raise InvalidSignature("signature verification failed")
    return b64.decode(payload_segment) if encoded else payload_segment


def sign_json(
    payload: bytes,
    signers: Sequence[Key | tuple[Key, Mapping[str, Any]]],
    *,
    flattened: bool = False,
    detached: bool = False,
) -> dict[str, Any]:
    """Sign with one or more keys into the JWS JSON serialization (general, or flattened).

    Each signer is a key, or ``(key, protected_headers)``.

    >>> k1, k2 = Key.generate("ES256"), Key.generate("EdDSA")
    >>> len(sign_json(b"x", [k1, k2])["signatures"])
    2
    """
    if not signers or (flattened and len(signers) != 1):
        raise UsageError("flattened JSON has exactly one signature; general at least one")
    entries: list[dict[str, Any]] = []
    payload_segment: bytes | None = None
    for signer in signers:
        key, headers = signer if isinstance(signer, tuple) else (signer, None)
        header_segment, alg, encoded = protected_header(key, None, headers)
        segment = b64.encode(payload) if encoded else bytes(payload)
        if payload_segment is not None and segment != payload_segment:
            raise UsageError("every signature must agree on b64")
        payload_segment = segment
        signature = key.signer(alg)(header_segment + b"." + segment)
        entries.append(
            {"protected": header_segment.decode("ascii"), "signature": b64.encode_str(signature)}
        )
    assert payload_segment is not None
    result: dict[str, Any] = {}
    if not detached:
        try:
            result["payload"] = payload_segment.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("an unencoded payload must be UTF-8 or detached") from None
    if flattened:
        result.update(entries[0])
    else:
        result["signatures"] = entries
    return result


def verify_json(
    document: Mapping[str, Any] | str | bytes,
    key: Key | KeySet | Mapping[str, Any] | str | bytes,
    *,
    algorithms: Collection[str],
    detached_payload: bytes | None = None,
) -> bytes:
    """Verify a JWS in JSON serialization: succeeds when one signature verifies with an allowed key.

    >>> key = Key.generate("ES256")
    >>> verify_json(sign_json(b"x", [key], flattened=True), key, algorithms=["ES256"])
    b'x'
    """
    allowed = allowed_algorithms(algorithms)
    keys = as_keys(key)
    if isinstance(document, str | bytes):
        raw = _as_bytes(document)
        if len(raw) > MAX_TOKEN_BYTES:
            raise MalformedToken("JWS too large")
        document = json.loads_object(raw, max_bytes=MAX_TOKEN_BYTES)
    if not isinstance(document, Mapping):
        raise MalformedToken("a JSON JWS is an object")
    if "signatures" in document:
        entries = document["signatures"]
        if "signature" in document or not isinstance(entries, list) or not entries:
            raise MalformedToken("invalid general JWS JSON")
    else:
        entries = [document]
    if len(entries) > MAX_JSON_SIGNATURES:
        raise MalformedToken("too many signatures")
    payload = document.get("payload")
    if detached_payload is not None:
        if payload is not None:
            raise MalformedToken("a detached JWS carries no payload")
    elif not isinstance(payload, str):
        raise MalformedToken("JWS payload missing")
    failure: Exception = KeyNotFound("no signature with an allowed key")
    for entry in entries:
        try:
            return _verify_entry(entry, payload, detached_payload, keys, allowed)
        except (InvalidSignature, KeyNotFound, AlgorithmNotAllowed, InvalidKey) as error:
            failure = error if not isinstance(failure, InvalidSignature) else failure
    raise failure


def _verify_entry(
    entry: Any,
    payload: str | None,
    detached_payload: bytes | None,
    keys: Key | KeySet,
    allowed: frozenset[str],
) -> bytes:
    if not isinstance(entry, Mapping):
        raise MalformedToken("a JWS signature is an object")
    protected_text = entry.get("protected", "")
    if not isinstance(protected_text, str):
        raise MalformedToken("protected header must be a string")
    header_segment = protected_text.encode("ascii", "replace")
    # RFC 7515 §7.2.1: the protected header may be absent (RFC 7520 §4.7 protects content only).
    protected = parse_header(header_segment) if header_segment else {}
    unprotected = entry.get("header", {})
    if not isinstance(unprotected, Mapping):
        raise MalformedToken("unprotected header is not an object")
    if set(unprotected) & set(protected):
        raise MalformedToken("protected and unprotected headers overlap")
    if "crit" in unprotected or "b64" in unprotected:
        raise MalformedToken("crit and b64 must be protected")
    header = {**unprotected, **protected}
    encoded = check_header(header, allow_unencoded=True)
    verify_signature = select_verifier(keys, header, allowed)
    signature_text = entry.get("signature")
    if not isinstance(signature_text, str):
        raise MalformedToken("signature missing")
    signature = b64.decode(signature_text)
    if detached_payload is not None:
        payload_segment = b64.encode(detached_payload) if encoded else bytes(detached_payload)
    else:
        assert payload is not None
        payload_segment = payload.encode("utf-8")
    if not verify_signature(header_segment + b"." + payload_segment, signature):
        raise InvalidSignature("signature verification failed")
    return b64.decode(payload_segment) if encoded else payload_segment


# ------------------------------------------------------------------------ shared header policy


def parse_header(segment: bytes) -> dict[str, Any]:
    """Decode a protected header segment into a JSON object, bounded in size.

    >>> parse_header(b"eyJhbGciOiJFUzI1NiJ9")
    {'alg': 'ES256'}
    """
    if len(segment) > MAX_HEADER_BYTES:
        raise MalformedToken("header too large")
    return json.loads_object(b64.decode(segment))


def check_header(header: Mapping[str, Any], *, allow_unencoded: bool) -> bool:
    """Apply the header rules every JWS shares; return whether the payload is base64url-encoded.

    >>> check_header({"alg": "HS256", "crit": ["exp"], "exp": 1}, allow_unencoded=True)
    Traceback (most recent call last):
    ...
    tessera.jose.errors.UnsupportedHeader: critical header not understood
    """
    if type(header.get("alg")) is not str:
        raise MalformedToken("alg must be a string")
    kid = header.get("kid")
    if kid is not None and type(kid) is not str:
        raise MalformedToken("kid must be a string")
    crit = header.get("crit")
    if crit is not None:
        if type(crit) is not list or not crit:
            raise MalformedToken("crit must be a non-empty list")
        for name in crit:
            if type(name) is not str or name in _REGISTERED or name not in header:
                raise MalformedToken("invalid crit")
            if name not in _UNDERSTOOD_CRIT or not allow_unencoded:
                raise UnsupportedHeader("critical header not understood")
    if "b64" not in header:
        return True
    encoded = header["b64"]
    if not allow_unencoded:
        raise UnsupportedHeader("a JWT never uses an unencoded payload")
    if type(encoded) is not bool or crit is None or "b64" not in crit:
        raise UnsupportedHeader("b64 must be a boolean listed in crit")
    return encoded


def select_verifier(
    keys: Key | KeySet, header: Mapping[str, Any], allowed: frozenset[str]
) -> Verify:
    """The prepared verification for this header: allowed algorithm, fitting key, kid match.

    >>> key = Key.generate("ES256")
    >>> callable(select_verifier(key, {"alg": "ES256"}, frozenset({"ES256"})))
    True
    """
    alg = header["alg"]
    if alg not in allowed:
        raise AlgorithmNotAllowed("algorithm not allowed")
    if isinstance(keys, Key):
        if alg not in keys.algorithms():
            raise AlgorithmNotAllowed("algorithm does not fit the key")
        return keys.verifier(alg)
    found = keys.candidates(header.get("kid"), alg)[:_MAX_CANDIDATES]
    if not found:
        raise KeyNotFound("no key for this token")
    if len(found) == 1:
        return found[0].verifier(alg)
    verifiers = [candidate.verifier(alg) for candidate in found]

    def verify_any(message: bytes, signature: bytes) -> bool:
        return any(verify_one(message, signature) for verify_one in verifiers)

    return verify_any


def protected_header(
    key: Key,
    alg: str | None,
    headers: Mapping[str, Any] | None,
    *,
    typ: str | None = None,
    allow_unencoded: bool = True,
) -> tuple[bytes, str, bool]:
    """The encoded protected header a signature by ``key`` carries, the algorithm it names,
    and whether the payload is base64url-encoded. A header given as ``None`` is left out.

    >>> key = Key.generate("HS256")
    >>> protected_header(key, None, {"typ": "JOSE"})[:2]
    (b'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpPU0UifQ', 'HS256')
    """
    if not isinstance(key, Key):
        raise InvalidKey("signing needs a Key")
    alg = alg or (headers or {}).get("alg") or key.default_alg
    header: dict[str, Any] = {"alg": alg}
    if typ is not None:
        header["typ"] = typ
    if key.kid is not None:
        header["kid"] = key.kid
    if headers:
        if headers.get("alg", alg) != alg:
            raise UsageError("headers name another algorithm")
        header.update(headers)
        header = {name: value for name, value in header.items() if value is not None}
    encoded = header.get("b64", True)
    if type(encoded) is not bool:
        raise UsageError("b64 must be a boolean")
    if not encoded:
        crit = list(header.get("crit", ()))
        if "b64" not in crit:
            header["crit"] = [*crit, "b64"]
    check_header(header, allow_unencoded=allow_unencoded)
    return b64.encode(json.dumps(header)), alg, encoded


def _as_bytes(token: str | bytes) -> bytes:
    if type(token) is str:
        if len(token) > MAX_TOKEN_BYTES:
            raise MalformedToken("token too large")
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("token is not ASCII") from None
    if isinstance(token, bytes | bytearray | memoryview):
        raw = bytes(token)
        if len(raw) > MAX_TOKEN_BYTES:
            raise MalformedToken("token too large")
        return raw
    raise MalformedToken("token must be str or bytes")
