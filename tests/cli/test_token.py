"""``tessera token``: encode, verify, inspect — real keys, real tokens, real exit codes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from tessera import jose

from ..jose.forge import forge_claims

Invoke = Callable[..., Result]
CleanFailure = Callable[[Result, int], None]

CLAIMS = {"sub": "ada", "iss": "https://id.example", "aud": "api"}
POLICY = ["--alg", "ES256", "--iss", "https://id.example", "--aud", "api"]


def sign(key: jose.Key, **claims: Any) -> str:
    return jose.jwt.encode({**CLAIMS, "exp": int(time.time()) + 600, **claims}, key)


def assert_token_not_shown(result: Result, token: str) -> None:
    for part in token.split("."):
        assert part not in result.output


# ------------------------------------------------------------------ encode


def test_encode_signs_a_token_the_key_verifies(
    invoke: Invoke, key_file: Path, es256_key: jose.Key
) -> None:
    result = invoke(
        "token", "encode", "--key", str(key_file), "--claims", json.dumps(CLAIMS), "--exp", "15m"
    )

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    claims = jose.jwt.decode(
        token, es256_key.public(), algorithms=["ES256"], issuer=CLAIMS["iss"], audience="api"
    )
    assert claims["sub"] == "ada"


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1h30m", 5400)],
)
def test_encode_exp_sets_exp_and_iat_from_now(
    invoke: Invoke, key_file: Path, duration: str, seconds: int
) -> None:
    before = int(time.time())
    result = invoke("token", "encode", "--key", str(key_file), "--claims", "{}", "--exp", duration)
    after = int(time.time())

    _, claims = jose.jwt.decode_unverified(result.stdout.strip())
    assert before <= claims["iat"] <= after
    assert claims["exp"] - claims["iat"] == seconds


def test_encode_exp_keeps_a_given_iat(invoke: Invoke, key_file: Path) -> None:
    result = invoke(
        "token", "encode", "--key", str(key_file), "--claims", '{"iat": 1000}', "--exp", "1h"
    )

    _, claims = jose.jwt.decode_unverified(result.stdout.strip())
    assert claims["iat"] == 1000
    assert claims["exp"] >= time.time() + 3590


def test_encode_reads_claims_from_a_file(invoke: Invoke, key_file: Path, tmp_path: Path) -> None:
    claims_file = tmp_path / "claims.json"
    claims_file.write_text(json.dumps(CLAIMS))

    result = invoke("token", "encode", "--key", str(key_file), "--claims", f"@{claims_file}")

    assert result.exit_code == 0, result.output
    assert jose.jwt.decode_unverified(result.stdout.strip())[1] == CLAIMS


def test_encode_without_exp_warns_on_stderr_only(invoke: Invoke, key_file: Path) -> None:
    result = invoke("token", "encode", "--key", str(key_file), "--claims", "{}")

    assert result.exit_code == 0
    assert result.stdout.count(".") == 2
    assert "exp" in result.stderr


def test_encode_kid_and_alg_set_the_header(invoke: Invoke, tmp_path: Path) -> None:
    key_file = tmp_path / "rsa.pem"
    key_file.write_bytes(jose.Key.generate("RS256").to_pem(private=True))

    result = invoke(
        "token", "encode", "--key", str(key_file), "--claims", "{}", "--alg", "PS384", "--kid", "k7"
    )

    header, _ = jose.jwt.decode_unverified(result.stdout.strip())
    assert header == {"alg": "PS384", "typ": "JWT", "kid": "k7"}


def test_encode_with_an_hmac_jwk(invoke: Invoke, tmp_path: Path) -> None:
    key = jose.Key.generate("HS256")
    key_file = tmp_path / "secret.jwk"
    key_file.write_text(json.dumps(key.to_jwk(private=True)))

    result = invoke("token", "encode", "--key", str(key_file), "--claims", "{}", "--exp", "1m")

    assert jose.jwt.decode(result.stdout.strip(), key, algorithms=["HS256"])["exp"] > time.time()


def test_encode_json_shape(invoke: Invoke, key_file: Path) -> None:
    result = invoke(
        "token", "encode", "--key", str(key_file), "--claims", '{"sub": "ada"}', "--json"
    )

    document = json.loads(result.stdout)
    assert sorted(document) == ["alg", "claims", "token"]
    assert document["alg"] == "ES256"
    assert document["claims"] == {"sub": "ada"}
    assert jose.jwt.decode_unverified(document["token"])[1] == {"sub": "ada"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--claims", "{"], "invalid JSON"),
        (["--claims", "[1, 2]"], "not a JSON object"),
        (["--claims", '{"n": NaN}'], "invalid JSON"),
        (["--claims", "@/nonexistent/claims.json"], "cannot read claims file"),
        (["--claims", "{}", "--exp", "15"], "invalid duration"),
        (["--claims", "{}", "--exp", "5x"], "invalid duration"),
        (["--claims", "{}", "--exp", "0s"], "longer than zero"),
        (["--claims", "{}", "--alg", "none"], "unknown algorithm"),
        (["--claims", "{}", "--alg", "ES384"], "cannot sign with ES384"),
    ],
)
def test_encode_bad_input_is_one_line_and_exit_2(
    invoke: Invoke, key_file: Path, clean_failure: CleanFailure, args: list[str], message: str
) -> None:
    result = invoke("token", "encode", "--key", str(key_file), *args)

    clean_failure(result, 2)
    assert message in result.stderr


def test_encode_with_a_public_key_is_refused(
    invoke: Invoke, public_key_file: Path, clean_failure: CleanFailure
) -> None:
    result = invoke("token", "encode", "--key", str(public_key_file), "--claims", "{}")

    clean_failure(result, 2)
    assert "public key" in result.stderr


def test_encode_with_a_missing_key_file_is_refused(
    invoke: Invoke, tmp_path: Path, clean_failure: CleanFailure
) -> None:
    result = invoke("token", "encode", "--key", str(tmp_path / "nope.jwk"), "--claims", "{}")

    clean_failure(result, 2)
    assert "cannot read key file" in result.stderr


# ------------------------------------------------------------------ verify


def test_verify_prints_the_verified_claims(
    invoke: Invoke, public_key_file: Path, es256_key: jose.Key
) -> None:
    token = sign(es256_key)

    result = invoke("token", "verify", token, "--key", str(public_key_file), *POLICY)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sub"] == "ada"
    assert "valid" in result.stderr


def test_verify_reads_the_token_from_stdin(
    invoke: Invoke, public_key_file: Path, es256_key: jose.Key
) -> None:
    result = invoke(
        "token", "verify", "-", "--key", str(public_key_file), *POLICY, input=sign(es256_key) + "\n"
    )

    assert result.exit_code == 0, result.output


def test_verify_with_a_jwks_picks_the_key_by_kid(
    invoke: Invoke, tmp_path: Path, es256_key: jose.Key
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jose.KeySet([jose.Key.generate("ES256"), es256_key]).to_jwks()))

    result = invoke("token", "verify", sign(es256_key), "--jwks", str(jwks), *POLICY)

    assert result.exit_code == 0, result.output


def test_verify_json_shape(invoke: Invoke, public_key_file: Path, es256_key: jose.Key) -> None:
    token = sign(es256_key)

    result = invoke("token", "verify", token, "--key", str(public_key_file), *POLICY, "--json")

    document = json.loads(result.stdout)
    assert sorted(document) == ["claims", "header", "valid"]
    assert document["valid"] is True
    assert document["header"]["kid"] == es256_key.kid
    assert document["claims"] == jose.jwt.decode_unverified(token)[1]


def test_verify_leeway_accepts_a_token_that_just_expired(
    invoke: Invoke, public_key_file: Path, es256_key: jose.Key
) -> None:
    token = sign(es256_key, exp=int(time.time()) - 5)

    strict = invoke("token", "verify", token, "--key", str(public_key_file), *POLICY)
    lenient = invoke(
        "token", "verify", token, "--key", str(public_key_file), *POLICY, "--leeway", "60"
    )

    assert (strict.exit_code, lenient.exit_code) == (1, 0)


def _tampered(key: jose.Key) -> str:
    header, _, signature = sign(key).split(".")
    payload = jose.b64.encode_str(jose.json.dumps({**CLAIMS, "sub": "root", "exp": 2**31}))
    return f"{header}.{payload}.{signature}"


REFUSALS: dict[str, tuple[Callable[[jose.Key], str], str]] = {
    "expired": (lambda key: sign(key, exp=1), "expired"),
    "no-exp": (lambda key: jose.jwt.encode(CLAIMS, key), "missing_claim"),
    "wrong-issuer": (lambda key: sign(key, iss="https://evil.example"), "invalid_issuer"),
    "wrong-audience": (lambda key: sign(key, aud="other"), "invalid_audience"),
    "not-yet-valid": (lambda key: sign(key, nbf=int(time.time()) + 600), "not_yet_valid"),
    "other-key": (
        lambda key: sign(jose.Key.generate("ES256", kid=key.kid)),
        "invalid_signature",
    ),
    "tampered": (_tampered, "invalid_signature"),
    "malformed": (lambda key: "malformedtokenpart.zz9zz", "malformed"),
    "alg-not-allowed": (
        lambda key: jose.jwt.encode({"exp": 2**31}, jose.Key.generate("HS256")),
        "algorithm_not_allowed",
    ),
}
refusals = pytest.mark.parametrize(
    ("make_token", "code"), list(REFUSALS.values()), ids=list(REFUSALS)
)


@refusals
def test_verify_refusal_prints_code_to_stderr_exits_1_and_never_echoes_the_token(
    invoke: Invoke,
    public_key_file: Path,
    es256_key: jose.Key,
    make_token: Callable[[jose.Key], str],
    code: str,
) -> None:
    token = make_token(es256_key)

    result = invoke("token", "verify", token, "--key", str(public_key_file), *POLICY)

    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert code in result.stderr
    assert "Traceback" not in result.output
    assert_token_not_shown(result, token)


@refusals
def test_verify_refusal_json_shape(
    invoke: Invoke,
    public_key_file: Path,
    es256_key: jose.Key,
    make_token: Callable[[jose.Key], str],
    code: str,
) -> None:
    token = make_token(es256_key)

    result = invoke("token", "verify", token, "--key", str(public_key_file), *POLICY, "--json")

    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert sorted(document) == ["claim", "code", "message", "valid"]
    assert document["valid"] is False
    assert document["code"] == code
    assert_token_not_shown(result, token)


def test_verify_unknown_kid_in_a_jwks_is_key_not_found(
    invoke: Invoke, tmp_path: Path, es256_key: jose.Key
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jose.KeySet([jose.Key.generate("ES256")]).to_jwks()))

    result = invoke("token", "verify", sign(es256_key), "--jwks", str(jwks), *POLICY, "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["code"] == "key_not_found"


def test_verify_names_the_claim_that_failed(
    invoke: Invoke, public_key_file: Path, es256_key: jose.Key
) -> None:
    result = invoke(
        "token", "verify", sign(es256_key, exp=1), "--key", str(public_key_file), *POLICY, "--json"
    )

    assert json.loads(result.stdout)["claim"] == "exp"


@pytest.mark.parametrize(
    ("claim", "value"), [("exp", None), ("exp", 1e308), ("sub", None), ("iat", "now")]
)
def test_verify_refuses_an_ill_typed_claim_with_exit_1_and_its_code(
    invoke: Invoke, public_key_file: Path, es256_key: jose.Key, claim: str, value: Any
) -> None:
    token = forge_claims({**CLAIMS, "exp": int(time.time()) + 600, claim: value}, es256_key)

    result = invoke("token", "verify", token, "--key", str(public_key_file), *POLICY, "--json")

    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert (document["valid"], document["code"], document["claim"]) == (
        False,
        "invalid_claim",
        claim,
    )
    assert_token_not_shown(result, token)


@pytest.mark.parametrize("claims", ['{"exp": null}', '{"iat": "now"}', '{"aud": []}'])
def test_encode_never_mints_an_ill_typed_claim(
    invoke: Invoke, key_file: Path, clean_failure: CleanFailure, claims: str
) -> None:
    result = invoke("token", "encode", "--key", str(key_file), "--claims", claims)

    clean_failure(result, 2)
    assert result.stdout == ""
    assert "cannot sign" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alg", "ES256"], "exactly one of --key or --jwks"),
        (["--alg", "ES256", "--key", "{key}", "--jwks", "{key}"], "exactly one of --key or --jwks"),
        (["--alg", "none", "--key", "{key}"], "unknown algorithm"),
        (["--alg", "HS256", "--key", "{key}"], "no allowed algorithm fits the key"),
        (["--alg", "ES256", "--key", "/nonexistent.jwk"], "cannot read key file"),
        (["--alg", "ES256", "--jwks", "{key}"], "JWKS"),
    ],
)
def test_verify_bad_input_is_one_line_and_exit_2(
    invoke: Invoke,
    public_key_file: Path,
    es256_key: jose.Key,
    clean_failure: CleanFailure,
    args: list[str],
    message: str,
) -> None:
    token = sign(es256_key)
    args = [arg.replace("{key}", str(public_key_file)) for arg in args]

    result = invoke("token", "verify", token, *args)

    clean_failure(result, 2)
    assert message in result.stderr
    assert_token_not_shown(result, token)


def test_verify_empty_stdin_is_exit_2(
    invoke: Invoke, public_key_file: Path, clean_failure: CleanFailure
) -> None:
    result = invoke(
        "token", "verify", "-", "--key", str(public_key_file), "--alg", "ES256", input=""
    )

    clean_failure(result, 2)
    assert "no token" in result.stderr


def test_verify_jwks_without_usable_keys_is_exit_2(
    invoke: Invoke, tmp_path: Path, clean_failure: CleanFailure
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": [{"kty": "unknown"}]}')

    result = invoke("token", "verify", "a.b.c", "--jwks", str(jwks), "--alg", "ES256")

    clean_failure(result, 2)
    assert "no usable key" in result.stderr


# ------------------------------------------------------------------ inspect


def test_inspect_shows_header_and_claims_marked_unverified(
    invoke: Invoke, es256_key: jose.Key
) -> None:
    result = invoke("token", "inspect", sign(es256_key))

    assert result.exit_code == 0, result.output
    assert "UNVERIFIED" in result.stdout
    assert '"ada"' in result.stdout
    assert es256_key.kid in result.stdout


def test_inspect_shows_times_in_iso_and_relative_form(invoke: Invoke) -> None:
    now = int(time.time())
    token = jose.jwt.encode(
        {"exp": now - 3 * 3600 - 60, "iat": now + 14 * 60 + 30}, jose.Key.generate("HS256")
    )

    output = invoke("token", "inspect", token).stdout

    assert "expired 3 h ago" in output
    assert "in 14 min" in output
    assert time.strftime("%Y-%m-%dT", time.gmtime(now - 3 * 3600 - 60)) in output


def test_inspect_json_shape(invoke: Invoke, es256_key: jose.Key) -> None:
    now = int(time.time())
    claims = {**CLAIMS, "exp": now + 15 * 60 + 30, "iat": now, "nbf": "soon"}
    token = forge_claims(claims, es256_key)

    document = json.loads(invoke("token", "inspect", token, "--json").stdout)

    assert sorted(document) == ["claims", "header", "times", "verified", "warning"]
    assert document["verified"] is False
    assert document["warning"].startswith("UNVERIFIED")
    assert document["header"] == {"alg": "ES256", "typ": "JWT", "kid": es256_key.kid}
    assert document["claims"]["sub"] == "ada"
    assert document["times"]["exp"]["relative"] == "in 15 min"
    assert document["times"]["exp"]["iso"].endswith("Z")
    assert document["times"]["iat"]["epoch"] == now
    assert document["times"]["nbf"] == {"epoch": "soon", "iso": None, "relative": None}


def test_inspect_reads_the_token_from_stdin(invoke: Invoke, es256_key: jose.Key) -> None:
    result = invoke("token", "inspect", "-", input=sign(es256_key))

    assert result.exit_code == 0
    assert "UNVERIFIED" in result.stdout


def test_inspect_escapes_terminal_control_characters(invoke: Invoke) -> None:
    token = jose.jwt.encode(
        {"sub": "\x1b[2J\x9b\u202eada", "\x1b]0;x\x07": 1}, jose.Key.generate("HS256")
    )

    for result in (invoke("token", "inspect", token), invoke("token", "inspect", token, "--json")):
        assert result.exit_code == 0
        for char in "\x1b\x9b\u202e\x07":
            assert char not in result.output


def test_inspect_an_undecodable_token_is_exit_1_with_its_code(
    invoke: Invoke, clean_failure: CleanFailure
) -> None:
    result = invoke("token", "inspect", "not-a-token")

    clean_failure(result, 1)
    assert "malformed" in result.stderr
    document = json.loads(invoke("token", "inspect", "not-a-token", "--json").stdout)
    assert document == {"code": "malformed", "message": "a JWT has three parts"}
