"""tessera.jose.jwt: encode, decode, decode_unverified and the Verifier with its cache."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from tessera import jose

from .forge import forge

NOW = 1_700_000_000
CLAIMS: dict[str, Any] = {
    "iss": "https://id.example",
    "sub": "ada",
    "aud": "orders",
    "iat": NOW,
    "exp": NOW + 900,
    "scope": "orders:read",
}
ALGORITHMS = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "Ed448",
]  # fmt: skip


@pytest.fixture(scope="module")
def keys() -> dict[str, jose.Key]:
    return {alg: jose.Key.generate(alg) for alg in ALGORITHMS}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_algorithm_round_trips(alg: str, keys: dict[str, jose.Key]) -> None:
    key = keys[alg]
    token = jose.jwt.encode(CLAIMS, key)
    verifying = key if key.kty == "oct" else key.public()
    claims = jose.jwt.decode(
        token, verifying, algorithms=[alg], issuer=CLAIMS["iss"], audience="orders", now=NOW
    )
    assert claims == CLAIMS
    header, _ = jose.jwt.decode_unverified(token)
    assert header["alg"] == alg
    assert header["typ"] == "JWT"
    assert header.get("kid") == key.kid


def test_encode_uses_the_key_algorithm_and_kid_by_default() -> None:
    key = jose.Key.generate("ES384", kid="signing-2026")
    header, _ = jose.jwt.decode_unverified(jose.jwt.encode(CLAIMS, key))
    assert header == {"alg": "ES384", "typ": "JWT", "kid": "signing-2026"}


def test_encode_takes_extra_headers_such_as_typ() -> None:
    key = jose.Key.generate("ES256")
    token = jose.jwt.encode(CLAIMS, key, headers={"typ": "at+jwt"})
    assert jose.jwt.decode_unverified(token)[0]["typ"] == "at+jwt"
    with pytest.raises(jose.UsageError):
        jose.jwt.encode(CLAIMS, key, headers={"alg": "HS256"})


def test_each_set_of_extra_headers_keeps_its_own_encoded_header() -> None:
    # Encoded headers are kept per key, algorithm and headers: a later call with other
    # headers (or equal values of another type) never gets an earlier call's header.
    key = jose.Key.generate("ES256")
    for typ in ("at+jwt", "logout+jwt", "at+jwt"):
        token = jose.jwt.encode(CLAIMS, key, headers={"typ": typ})
        assert jose.jwt.decode_unverified(token)[0]["typ"] == typ
    token = jose.jwt.encode(CLAIMS, key, headers={"typ": "at+jwt", "x5t": None})
    assert "x5t" not in jose.jwt.decode_unverified(token)[0]
    assert jose.jwt.decode_unverified(jose.jwt.encode(CLAIMS, key))[0]["typ"] == "JWT"
    flagged = jose.jwt.encode(CLAIMS, key, headers={"urn:example:flag": 1})
    assert jose.jwt.decode_unverified(flagged)[0]["urn:example:flag"] == 1
    flagged = jose.jwt.encode(CLAIMS, key, headers={"urn:example:flag": True})
    assert jose.jwt.decode_unverified(flagged)[0]["urn:example:flag"] is True
    # A header that cannot be kept (a list) is built each time, and still checked.
    with pytest.raises(jose.UnsupportedHeader) as refused:
        jose.jwt.encode(
            CLAIMS, key, headers={"crit": ["urn:example:unknown"], "urn:example:unknown": 1}
        )
    assert refused.value.__context__ is None


def test_encode_turns_datetimes_into_epoch_seconds() -> None:
    key = jose.Key.generate("HS256")
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    token = jose.jwt.encode({"sub": "ada", "exp": moment, "iat": moment}, key)
    assert jose.jwt.decode_unverified(token)[1] == {
        "sub": "ada",
        "exp": 1893456000,
        "iat": 1893456000,
    }


def test_a_public_key_cannot_sign() -> None:
    key = jose.Key.generate("ES256").public()
    with pytest.raises(jose.InvalidKey):
        jose.jwt.encode(CLAIMS, key)


def test_claims_must_be_a_json_serialisable_mapping() -> None:
    key = jose.Key.generate("HS256")
    with pytest.raises(jose.UsageError):
        jose.jwt.encode(["not", "a", "mapping"], key)  # type: ignore[arg-type]
    with pytest.raises(jose.UsageError):
        jose.jwt.encode({"note": object()}, key)


def test_decode_accepts_every_form_of_key() -> None:
    key = jose.Key.generate("ES256")
    token = jose.jwt.encode(CLAIMS, key)
    public = key.public()
    forms: list[Any] = [
        public,
        jose.KeySet([public]),
        public.to_jwk(),
        {"keys": [public.to_jwk()]},
        public.to_pem(),
        public.to_pem().decode(),
        public.to_der(),
    ]
    for form in forms:
        assert jose.jwt.decode(token, form, algorithms=["ES256"], audience="orders", now=NOW)
    secret = b"a-long-enough-hmac-secret-for-hs256!"
    hs = jose.jwt.encode(CLAIMS, secret, alg="HS256")
    assert jose.jwt.decode(hs, secret, algorithms=["HS256"], audience="orders", now=NOW)
    assert jose.jwt.decode(hs, secret.decode(), algorithms=["HS256"], audience="orders", now=NOW)


def test_key_set_selects_by_kid_then_by_algorithm() -> None:
    old, new = jose.Key.generate("ES256", kid="old"), jose.Key.generate("ES256", kid="new")
    edwards = jose.Key.generate("EdDSA", kid="ed")
    keys = jose.KeySet([old.public(), new.public(), edwards.public()])
    options: dict[str, Any] = {"algorithms": ["ES256", "EdDSA"], "audience": "orders", "now": NOW}
    for signer in (old, new, edwards):
        assert jose.jwt.decode(jose.jwt.encode(CLAIMS, signer), keys, **options) == CLAIMS
    stranger = jose.Key.generate("ES256", kid="stranger")
    with pytest.raises(jose.KeyNotFound):
        jose.jwt.decode(jose.jwt.encode(CLAIMS, stranger), keys, **options)
    without_kid = forge({"alg": "ES256"}, CLAIMS, new, "ES256")
    assert jose.jwt.decode(without_kid, keys, **options) == CLAIMS
    impostor = forge({"alg": "ES256", "kid": "new"}, CLAIMS, stranger, "ES256")
    with pytest.raises(jose.InvalidSignature):
        jose.jwt.decode(impostor, keys, **options)


def test_a_single_key_ignores_a_kid_it_does_not_carry() -> None:
    key = jose.Key.generate("HS256")
    token = forge({"alg": "HS256", "kid": "whatever"}, CLAIMS, key, "HS256")
    assert jose.jwt.decode(token, key, algorithms=["HS256"], audience="orders", now=NOW)


def test_decode_unverified_reads_without_checking_anything() -> None:
    token = forge({"alg": "none"}, {"sub": "anyone", "exp": 1}, signature=b"")
    header, claims = jose.jwt.decode_unverified(token)
    assert header == {"alg": "none"}
    assert claims == {"sub": "anyone", "exp": 1}
    assert "UNVERIFIED" in (jose.jwt.decode_unverified.__doc__ or "")
    with pytest.raises(jose.MalformedToken):
        jose.jwt.decode_unverified("only.two")


def test_verifier_policy_is_decided_once_and_reused() -> None:
    key = jose.Key.generate("EdDSA")
    verifier = jose.Verifier(
        key.public(), algorithms=["EdDSA"], issuer=CLAIMS["iss"], audience="orders", leeway=5
    )
    tokens = [jose.jwt.encode({**CLAIMS, "jti": str(i)}, key) for i in range(5)]
    assert [verifier.verify(token, now=NOW)["jti"] for token in tokens] == list("01234")
    assert verifier.verify(tokens[0].encode(), now=NOW)["jti"] == "0"
    with pytest.raises(jose.MalformedToken):
        verifier.verify(12345)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"leeway": -1},
        {"max_age": -5},
        {"issuer": ""},
        {"issuer": set()},
        {"audience": [1]},
        {"require": "exp"},
        {"algorithms": ["HS999"]},
    ],
)
def test_verifier_refuses_a_wrong_policy(options: dict[str, Any]) -> None:
    key = jose.Key.generate("HS256")
    arguments: dict[str, Any] = {"algorithms": ["HS256"], **options}
    if options.get("issuer") == "":
        with pytest.raises(jose.InvalidIssuer):
            jose.Verifier(key, **arguments).verify(jose.jwt.encode(CLAIMS, key), now=NOW)
        return
    with pytest.raises(jose.UsageError):
        jose.Verifier(key, **arguments)


# ---------------------------------------------------------------- the verified-token cache


def test_cache_hit_returns_the_claims_without_verifying_again() -> None:
    key = jose.Key.generate("ES256")
    verifier = jose.Verifier(key.public(), algorithms=["ES256"], audience="orders", cache=16)
    token = jose.jwt.encode(CLAIMS, key)
    first = verifier.verify(token, now=NOW)
    first["sub"] = "mallory"  # callers get their own copy: the cache stays as verified
    assert verifier.verify(token, now=NOW) == CLAIMS
    assert verifier.cache_info() == (1, 16)


def test_cache_hit_rechecks_expiry_and_not_before() -> None:
    key = jose.Key.generate("HS256")
    verifier = jose.Verifier(key, algorithms=["HS256"], audience="orders", cache=16, max_age=600)
    token = jose.jwt.encode({**CLAIMS, "nbf": NOW + 10}, key)
    with pytest.raises(jose.NotYetValid):
        verifier.verify(token, now=NOW)
    assert verifier.cache_info()[0] == 0  # failures are never cached
    assert verifier.verify(token, now=NOW + 10)["sub"] == "ada"
    assert verifier.cache_info()[0] == 1
    with pytest.raises(jose.NotYetValid):
        verifier.verify(token, now=NOW + 9)
    with pytest.raises(jose.ExpiredToken):
        verifier.verify(token, now=NOW + 601)  # max_age
    with pytest.raises(jose.ExpiredToken):
        verifier.verify(token, now=CLAIMS["exp"])


def test_cache_runs_the_revocation_check_on_every_hit() -> None:
    key = jose.Key.generate("HS256")
    revoked: set[str] = set()

    def refuse_revoked(claims: dict[str, Any]) -> None:
        if claims.get("jti") in revoked:
            raise jose.InvalidToken("token revoked")

    verifier = jose.Verifier(
        key, algorithms=["HS256"], audience="orders", cache=16, check=refuse_revoked
    )
    token = jose.jwt.encode({**CLAIMS, "jti": "t-1"}, key)
    assert verifier.verify(token, now=NOW)["jti"] == "t-1"
    revoked.add("t-1")
    with pytest.raises(jose.InvalidToken, match="revoked"):
        verifier.verify(token, now=NOW)
    revoked.clear()
    assert verifier.verify(token, now=NOW)["jti"] == "t-1"


def test_cache_never_keeps_a_refused_token() -> None:
    key = jose.Key.generate("HS256")
    allow = False

    def gate(claims: dict[str, Any]) -> None:
        if not allow:
            raise jose.InvalidToken("refused by check")

    verifier = jose.Verifier(key, algorithms=["HS256"], audience="orders", cache=4, check=gate)
    token = jose.jwt.encode(CLAIMS, key)
    with pytest.raises(jose.InvalidToken):
        verifier.verify(token, now=NOW)
    assert verifier.cache_info()[0] == 0
    tampered = token[:-4] + "AAAA"
    allow = True
    with pytest.raises(jose.InvalidSignature):
        verifier.verify(tampered, now=NOW)
    assert verifier.cache_info()[0] == 0


def test_cache_is_bounded_least_recently_used_first() -> None:
    key = jose.Key.generate("HS256")
    verifier = jose.Verifier(key, algorithms=["HS256"], audience="orders", cache=3)
    tokens = [jose.jwt.encode({**CLAIMS, "jti": str(i)}, key) for i in range(10)]
    for token in tokens:
        verifier.verify(token, now=NOW)
        assert verifier.cache_info()[0] <= 3
    assert verifier.cache_info() == (3, 3)
    verifier.verify(tokens[7], now=NOW)  # refresh 7: now 8 is the oldest
    verifier.verify(tokens[0], now=NOW)  # a miss that evicts 8
    assert verifier.cache_info() == (3, 3)
    cached = verifier._cache
    assert cached is not None
    assert list(cached) == [tokens[9], tokens[7], tokens[0]]


def test_cache_is_off_by_default() -> None:
    key = jose.Key.generate("HS256")
    verifier = jose.Verifier(key, algorithms=["HS256"], audience="orders")
    verifier.verify(jose.jwt.encode(CLAIMS, key), now=NOW)
    assert verifier.cache_info() == (0, 0)


def test_a_shared_verifier_is_safe_across_threads() -> None:
    key = jose.Key.generate("HS256")
    verifier = jose.Verifier(key, algorithms=["HS256"], audience="orders", cache=8)
    good = [jose.jwt.encode({**CLAIMS, "jti": str(i)}, key) for i in range(32)]
    bad = [token[:-4] + "AAAA" for token in good[:8]]
    errors: list[str] = []

    def work(offset: int) -> None:
        for round_ in range(200):
            index = (round_ + offset) % len(good)
            if verifier.verify(good[index], now=NOW)["jti"] != str(index):
                errors.append(f"wrong claims for {index}")
            try:
                verifier.verify(bad[index % len(bad)], now=NOW)
                errors.append("tampered token accepted")
            except jose.InvalidSignature:
                pass

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert verifier.cache_info()[0] <= 8
