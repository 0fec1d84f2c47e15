"""Settings: defaults, a TOML file named by TESSERA_CONFIG, environment variables over both."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tessera.idp.config import Settings


def test_defaults_are_the_embedded_sqlite_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TESSERA_CONFIG", "TESSERA_DATABASE_URL", "TESSERA_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.database_url == "sqlite:///var/tessera.db"
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.access_token_ttl == 900
    assert settings.signing_alg == "ES256"


def test_toml_file_sets_values_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tessera.toml"
    config.write_text(
        'issuer = "https://id.example/"\naccess_token_ttl = 600\nsigning_alg = "EdDSA"\n'
    )
    monkeypatch.setenv("TESSERA_CONFIG", str(config))
    monkeypatch.setenv("TESSERA_ACCESS_TOKEN_TTL", "300")
    settings = Settings()
    assert settings.issuer == "https://id.example"  # trailing slash dropped: it is the iss
    assert settings.signing_alg == "EdDSA"
    assert settings.access_token_ttl == 300


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("access_token_ttl", "30"),
        ("access_token_ttl", "7200"),
        ("issuer", "ftp://id.example"),
        ("signing_alg", "none"),
        ("signing_alg", "HS256"),
    ],
)
def test_out_of_range_or_unsafe_values_are_refused(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TESSERA_CONFIG", raising=False)
    monkeypatch.setenv(f"TESSERA_{name.upper()}", value)
    with pytest.raises(ValidationError):
        Settings()


def test_unknown_keys_in_the_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tessera.toml"
    config.write_text("acces_token_ttl = 600\n")  # a typo must not pass silently
    monkeypatch.setenv("TESSERA_CONFIG", str(config))
    with pytest.raises(ValidationError):
        Settings()


def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TESSERA_CONFIG", "TESSERA_ISSUER", "TESSERA_HOST", "TESSERA_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_the_issuer_follows_the_port_and_host_unless_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clean(monkeypatch)
    monkeypatch.setenv("TESSERA_PORT", "19102")
    assert Settings().issuer == "http://127.0.0.1:19102"
    assert Settings(port=19103).issuer == "http://127.0.0.1:19103"
    assert Settings(host="localhost", port=9000).issuer == "http://localhost:9000"
    # Every interface: clients on this machine reach it on the loopback address.
    assert Settings(host="0.0.0.0", port=9000).issuer == "http://127.0.0.1:9000"
    assert Settings(host="::", port=9000).issuer == "http://[::1]:9000"
    assert Settings(host="::1", port=9000).issuer == "http://[::1]:9000"
    config = tmp_path / "tessera.toml"
    config.write_text("port = 7000\n")
    monkeypatch.delenv("TESSERA_PORT")
    monkeypatch.setenv("TESSERA_CONFIG", str(config))
    assert Settings().issuer == "http://127.0.0.1:7000"


def test_an_explicit_issuer_is_kept_whatever_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean(monkeypatch)
    monkeypatch.setenv("TESSERA_PORT", "19102")
    monkeypatch.setenv("TESSERA_ISSUER", "https://id.example/")
    settings = Settings()
    assert (settings.issuer, settings.port) == ("https://id.example", 19102)
    assert settings.listen_url == "http://127.0.0.1:19102"
    assert Settings(issuer="https://other.example", port=1).issuer == "https://other.example"
