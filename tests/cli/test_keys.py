"""``tessera keys``: generate, public, thumbprint — against real keys and real files."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from tessera import jose

Invoke = Callable[..., Result]
CleanFailure = Callable[[Result, int], None]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------ generate


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "RS256", "HS256"])
def test_generate_prints_a_private_jwk_bound_to_the_algorithm(invoke: Invoke, alg: str) -> None:
    result = invoke("keys", "generate", "--alg", alg)

    assert result.exit_code == 0, result.output
    key = jose.Key.from_jwk(result.stdout)
    assert key.is_private
    assert key.alg == alg


def test_generate_names_an_asymmetric_key_by_its_thumbprint_unless_given_a_kid(
    invoke: Invoke,
) -> None:
    default = jose.Key.from_jwk(invoke("keys", "generate", "--alg", "ES256").stdout)
    named = jose.Key.from_jwk(invoke("keys", "generate", "--alg", "ES256", "--kid", "k1").stdout)

    assert default.kid == default.thumbprint()
    assert named.kid == "k1"


def test_generate_pem_is_pkcs8(invoke: Invoke) -> None:
    result = invoke("keys", "generate", "--alg", "EdDSA", "--format", "pem")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    assert jose.Key.from_pem(result.stdout).is_private


def test_generate_out_creates_a_file_only_its_owner_can_read(
    invoke: Invoke, tmp_path: Path
) -> None:
    out = tmp_path / "signing.jwk"

    result = invoke("keys", "generate", "--alg", "ES256", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    private = json.loads(out.read_text())
    assert private["d"] not in result.output
    assert result.stdout == ""
    assert str(out) in result.stderr


def test_generate_out_pem_is_a_readable_private_key(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "signing.pem"

    result = invoke("keys", "generate", "--alg", "RS256", "--format", "pem", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    assert jose.Key.from_pem(out.read_bytes()).is_private


def test_generate_refuses_to_overwrite_a_file(
    invoke: Invoke, tmp_path: Path, clean_failure: CleanFailure
) -> None:
    out = tmp_path / "signing.jwk"
    out.write_text("precious")

    result = invoke("keys", "generate", "--alg", "ES256", "--out", str(out))

    clean_failure(result, 2)
    assert "--force" in result.stderr
    assert out.read_text() == "precious"


def test_generate_force_replaces_a_world_readable_file_with_a_0600_one(
    invoke: Invoke, tmp_path: Path
) -> None:
    out = tmp_path / "signing.jwk"
    out.write_text("old")
    out.chmod(0o644)

    result = invoke("keys", "generate", "--alg", "ES256", "--out", str(out), "--force")

    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    assert jose.Key.from_jwk(out.read_text()).is_private
    assert [path.name for path in tmp_path.iterdir()] == ["signing.jwk"]


def test_generate_refuses_a_symlink_planted_at_the_output_path(
    invoke: Invoke, tmp_path: Path, clean_failure: CleanFailure
) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "signing.jwk").symlink_to(target)

    result = invoke("keys", "generate", "--alg", "ES256", "--out", str(tmp_path / "signing.jwk"))

    clean_failure(result, 2)
    assert not target.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alg", "none"], "unknown algorithm"),
        (["--alg", "HS1"], "unknown algorithm"),
        (["--alg", "HS256", "--format", "pem"], "no PEM form"),
        (["--alg", "ES256", "--format", "pem", "--kid", "k1"], "no place for a kid"),
        (["--alg", "ES256", "--out", "/nonexistent/dir/key.jwk"], "cannot write"),
    ],
)
def test_generate_bad_input_is_one_line_and_exit_2(
    invoke: Invoke, clean_failure: CleanFailure, args: list[str], message: str
) -> None:
    result = invoke("keys", "generate", *args)

    clean_failure(result, 2)
    assert message in result.stderr


def test_generate_json_holds_the_key_and_its_description(invoke: Invoke) -> None:
    document = json.loads(invoke("keys", "generate", "--alg", "ES256", "--json").stdout)

    assert sorted(document) == ["alg", "format", "key", "kid", "kty"]
    assert document["format"] == "jwk"
    assert jose.Key.from_jwk(document["key"]).kid == document["kid"]


def test_generate_json_with_out_names_the_file_and_holds_no_key(
    invoke: Invoke, tmp_path: Path
) -> None:
    out = tmp_path / "signing.pem"

    result = invoke(
        "keys", "generate", "--alg", "ES256", "--format", "pem", "--out", str(out), "--json"
    )

    document = json.loads(result.stdout)
    assert document == {
        "kty": "EC",
        "alg": "ES256",
        "kid": jose.Key.from_pem(out.read_bytes()).thumbprint(),
        "format": "pem",
        "path": str(out),
    }


def test_generate_json_error_is_a_document_with_code_and_message(invoke: Invoke) -> None:
    result = invoke("keys", "generate", "--alg", "none", "--json")

    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert sorted(document) == ["code", "message"]
    assert document["code"] == "invalid_input"


# ------------------------------------------------------------------ public


@pytest.mark.parametrize(
    "form",
    [
        lambda key: json.dumps(key.to_jwk(private=True)),
        lambda key: json.dumps(key.to_jwk()),
        lambda key: key.to_pem(private=True).decode(),
        lambda key: key.to_pem().decode(),
    ],
    ids=["private-jwk", "public-jwk", "private-pem", "public-pem"],
)
def test_public_reads_every_key_form_and_prints_only_the_public_part(
    invoke: Invoke, tmp_path: Path, form: Callable[[jose.Key], str]
) -> None:
    key = jose.Key.generate("ES256")
    path = tmp_path / "key"
    path.write_text(form(key))

    result = invoke("keys", "public", str(path))

    assert result.exit_code == 0, result.output
    public = json.loads(result.stdout)
    assert "d" not in public
    assert key.to_jwk(private=True)["d"] not in result.output
    assert jose.Key.from_jwk(public) == key


def test_public_pem_is_spki(invoke: Invoke, key_file: Path, es256_key: jose.Key) -> None:
    result = invoke("keys", "public", str(key_file), "--format", "pem")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert jose.Key.from_pem(result.stdout) == es256_key


def test_public_json_shape(invoke: Invoke, key_file: Path, es256_key: jose.Key) -> None:
    document = json.loads(invoke("keys", "public", str(key_file), "--json").stdout)

    assert document == {
        "kty": "EC",
        "alg": "ES256",
        "kid": es256_key.kid,
        "format": "jwk",
        "key": es256_key.public().to_jwk(),
    }


def test_public_of_an_hmac_secret_is_refused_without_printing_it(
    invoke: Invoke, tmp_path: Path, clean_failure: CleanFailure
) -> None:
    secret = jose.Key.generate("HS256").to_jwk(private=True)
    path = tmp_path / "secret.jwk"
    path.write_text(json.dumps(secret))

    result = invoke("keys", "public", str(path))

    clean_failure(result, 2)
    assert secret["k"] not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n", "PEM"),
        ('{"kty": "EC", "crv": "P-256"}', "invalid JWK"),
        ("short", "HMAC secret shorter"),
    ],
    ids=["missing", "bad-pem", "bad-jwk", "not-a-key"],
)
def test_public_of_an_unreadable_key_file_is_one_line_and_exit_2(
    invoke: Invoke,
    tmp_path: Path,
    clean_failure: CleanFailure,
    content: str | None,
    message: str,
) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_text(content)

    result = invoke("keys", "public", str(path))

    clean_failure(result, 2)
    assert message in result.stderr


def test_public_of_a_directory_is_one_line_and_exit_2(
    invoke: Invoke, tmp_path: Path, clean_failure: CleanFailure
) -> None:
    clean_failure(invoke("keys", "public", str(tmp_path)), 2)


# ------------------------------------------------------------------ thumbprint


def test_thumbprint_is_the_rfc_8037_example(
    invoke: Invoke, tmp_path: Path, vectors_dir: Path
) -> None:
    vector = json.loads((vectors_dir / "jose-cookbook" / "curve25519" / "jws.json").read_text())
    path = tmp_path / "ed25519.jwk"
    path.write_text(json.dumps(vector["input"]["key"]))

    result = invoke("keys", "thumbprint", str(path))

    # RFC 8037 Appendix A.3.
    assert result.stdout == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k\n"


def test_thumbprint_is_the_same_for_private_and_public_files(
    invoke: Invoke, key_file: Path, public_key_file: Path, es256_key: jose.Key
) -> None:
    private = invoke("keys", "thumbprint", str(key_file)).stdout
    public = invoke("keys", "thumbprint", str(public_key_file)).stdout

    assert private == public == es256_key.thumbprint() + "\n"


def test_thumbprint_json_shape(invoke: Invoke, key_file: Path, es256_key: jose.Key) -> None:
    document = json.loads(invoke("keys", "thumbprint", str(key_file), "--json").stdout)

    assert document == {
        "thumbprint": es256_key.thumbprint(),
        "hash": "sha256",
        "kty": "EC",
        "kid": es256_key.kid,
    }


def test_thumbprint_of_an_hmac_secret_is_refused(
    invoke: Invoke, tmp_path: Path, clean_failure: CleanFailure
) -> None:
    path = tmp_path / "secret.jwk"
    path.write_text(json.dumps(jose.Key.generate("HS256").to_jwk(private=True)))

    clean_failure(invoke("keys", "thumbprint", str(path)), 2)
