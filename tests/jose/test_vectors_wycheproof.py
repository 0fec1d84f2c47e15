"""Wycheproof vectors at the signature primitive, through the JWA registry.

Wycheproof signs raw messages, not JWS signing inputs, so every vector goes through
``algorithms.get(alg).make_verifier(key)(message, signature)``: each "valid" vector must verify,
each "invalid" one must be refused (``False``, never an exception), and an "acceptable" one must
at least come back as a ``bool``. Only the parameters JWS uses are taken: ECDSA in P1363 (R || S)
encoding, RSASSA-PKCS1-v1_5, RSASSA-PSS with salt length = hash length and MGF1 with the same hash,
Ed25519 and Ed448, and HMAC with its full-length tag. A truncated HMAC tag is never valid in JWS,
so those vectors, Wycheproof-valid or not, must all be refused.

Each test id names the file and the tcId, e.g. ``ecdsa_secp256r1_sha256_p1363_test-tc42``.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from tessera.jose import algorithms

# The parametrization is built at collection time, so the path is computed here rather than taken
# from the ``vectors_dir`` fixture; a missing directory is a collection error, never a skip.
WYCHEPROOF = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "wycheproof"

_SHA_BITS = {"SHA-256": 256, "SHA-384": 384, "SHA-512": 512}
_CURVES: dict[str, tuple[str, type[ec.EllipticCurve]]] = {
    "secp256r1": ("P-256", ec.SECP256R1),
    "secp384r1": ("P-384", ec.SECP384R1),
    "secp521r1": ("P-521", ec.SECP521R1),
}


@dataclass(frozen=True)
class Vector:
    """One Wycheproof test case, bound to the JWS algorithm and the key of its group."""

    file: str
    tc_id: int
    alg: str
    result: str
    message: bytes
    signature: bytes
    comment: str
    flags: tuple[str, ...]
    key: Callable[[], Any] = field(repr=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.file}-tc{self.tc_id}"


@dataclass
class Corpus:
    """Every vector read, sorted by what the tests expect of it, with a count per file."""

    signatures: list[Vector] = field(default_factory=list)
    truncated_macs: list[Vector] = field(default_factory=list)
    totals: Counter[str] = field(default_factory=Counter)
    taken: Counter[str] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)


def _read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


def _files(pattern: str) -> list[Path]:
    if not WYCHEPROOF.is_dir():
        raise FileNotFoundError(f"Wycheproof vectors not found at {WYCHEPROOF}")
    found = sorted(WYCHEPROOF.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no Wycheproof file matches {pattern} in {WYCHEPROOF}")
    return found


def _vectors(
    corpus: Corpus,
    path: Path,
    tests: list[dict[str, Any]],
    alg: str,
    key_of: Callable[[dict[str, Any]], Callable[[], Any]],
) -> Iterator[Vector]:
    for test in tests:
        corpus.taken[path.stem] += 1
        yield Vector(
            file=path.stem,
            tc_id=test["tcId"],
            alg=alg,
            result=test["result"],
            message=bytes.fromhex(test["msg"]),
            signature=bytes.fromhex(test["sig"] if "sig" in test else test["tag"]),
            comment=test["comment"],
            flags=tuple(test["flags"]),
            key=key_of(test),
        )


def _group_key(build: Callable[[], Any]) -> Callable[[dict[str, Any]], Callable[[], Any]]:
    """Every test of a group shares its public key, built once on first use."""
    shared = functools.cache(build)
    return lambda test: shared


def _hmac_key(test: dict[str, Any]) -> Callable[[], bytes]:
    """Each HMAC test carries its own secret."""
    return functools.partial(bytes.fromhex, test["key"])


def _ec_key(group: dict[str, Any]) -> Callable[[], ec.EllipticCurvePublicKey]:
    public = group["publicKey"]
    curve = _CURVES[public["curve"]][1]
    return lambda: ec.EllipticCurvePublicNumbers(
        int(public["wx"], 16), int(public["wy"], 16), curve()
    ).public_key()


def _rsa_key(group: dict[str, Any]) -> Callable[[], rsa.RSAPublicKey]:
    public = group["publicKey"]
    return lambda: rsa.RSAPublicNumbers(
        int(public["publicExponent"], 16), int(public["modulus"], 16)
    ).public_key()


def _eddsa_key(group: dict[str, Any]) -> tuple[str, Callable[[], Any]]:
    public = group["publicKey"] if "publicKey" in group else group["key"]  # v0 names it "key"
    raw = bytes.fromhex(public["pk"])
    if public["curve"] == "edwards25519":
        return "Ed25519", lambda: ed25519.Ed25519PublicKey.from_public_bytes(raw)
    assert public["curve"] == "edwards448"
    return "Ed448", lambda: ed448.Ed448PublicKey.from_public_bytes(raw)


def _load() -> Corpus:
    corpus = Corpus()

    def count(path: Path) -> dict[str, Any]:
        document = _read(path)
        corpus.totals[path.stem] = sum(len(group["tests"]) for group in document["testGroups"])
        return document

    for path in _files("ecdsa_secp*_p1363_test.json"):
        for group in count(path)["testGroups"]:
            crv = _CURVES[group["publicKey"]["curve"]][0]
            alg = f"ES{_SHA_BITS[group['sha']]}"
            assert algorithms.get(alg).curve == crv, f"{path.name}: {alg} does not take {crv}"
            corpus.signatures += _vectors(
                corpus, path, group["tests"], alg, _group_key(_ec_key(group))
            )

    for path in _files("rsa_signature_*_test.json"):
        for group in count(path)["testGroups"]:
            alg = f"RS{_SHA_BITS[group['sha']]}"
            corpus.signatures += _vectors(
                corpus, path, group["tests"], alg, _group_key(_rsa_key(group))
            )

    for path in _files("rsa_pss_*_test.json"):
        for group in count(path)["testGroups"]:
            bits = _SHA_BITS.get(group["sha"])
            jws_parameters = (
                bits is not None
                and group["mgf"] == "MGF1"
                and group["mgfSha"] == group["sha"]
                and group["sLen"] == bits // 8
            )
            if not jws_parameters:
                corpus.left_out[path.stem] += len(group["tests"])
                continue
            key = _group_key(_rsa_key(group))
            corpus.signatures += _vectors(corpus, path, group["tests"], f"PS{bits}", key)

    for pattern in ("ed25519_test.json", "ed448_test.json", "v0_eddsa_test.json"):
        for path in _files(pattern):
            for group in count(path)["testGroups"]:
                alg, build = _eddsa_key(group)
                corpus.signatures += _vectors(corpus, path, group["tests"], alg, _group_key(build))

    for path in _files("hmac_sha*_test.json"):
        bits = int(path.stem.removeprefix("hmac_sha").removesuffix("_test"))
        for group in count(path)["testGroups"]:
            target = corpus.signatures if group["tagSize"] == bits else corpus.truncated_macs
            target += _vectors(corpus, path, group["tests"], f"HS{bits}", _hmac_key)

    return corpus


CORPUS = _load()


def _params(vectors: list[Vector], *results: str) -> list[Any]:
    return [pytest.param(vector, id=vector.id) for vector in vectors if vector.result in results]


def _verify(vector: Vector) -> object:
    return algorithms.get(vector.alg).make_verifier(vector.key())(vector.message, vector.signature)


@pytest.mark.parametrize("vector", _params(CORPUS.signatures, "valid"))
def test_wycheproof_valid_signature_verifies(vector: Vector) -> None:
    assert _verify(vector) is True


@pytest.mark.parametrize("vector", _params(CORPUS.signatures, "invalid"))
def test_wycheproof_invalid_signature_is_refused(vector: Vector) -> None:
    assert _verify(vector) is False


@pytest.mark.parametrize("vector", _params(CORPUS.signatures, "acceptable"))
def test_wycheproof_acceptable_signature_gets_a_bool(
    vector: Vector, record_property: Callable[[str, object], None]
) -> None:
    outcome = _verify(vector)

    record_property("wycheproof_acceptable", f"{vector.id} flags={list(vector.flags)} -> {outcome}")
    assert isinstance(outcome, bool)


@pytest.mark.parametrize("vector", _params(CORPUS.truncated_macs, "valid", "invalid"))
def test_wycheproof_truncated_hmac_tag_is_refused(vector: Vector) -> None:
    full = {"HS256": 32, "HS384": 48, "HS512": 64}[vector.alg]
    assert len(vector.signature) < full

    assert _verify(vector) is False


def test_wycheproof_every_vector_is_accounted_for() -> None:
    # Each file's tests are all taken, except RSA-PSS groups whose parameters JWS never uses.
    for name, total in CORPUS.totals.items():
        assert CORPUS.taken[name] + CORPUS.left_out[name] == total, name
        assert CORPUS.taken[name] > 0, name
    assert not CORPUS.left_out.keys() - {name for name in CORPUS.totals if "rsa_pss" in name}
    results = Counter(vector.result for vector in CORPUS.signatures)
    assert results["valid"] > 0
    assert results["invalid"] > 0
    assert {vector.result for vector in CORPUS.truncated_macs} == {"valid", "invalid"}
