"""The master key: sealing at rest, keyed hashes, and where the key comes from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tessera.idp.config import Settings
from tessera.idp.provider import Provider
from tessera.idp.services.secrets import MasterKey, MasterKeyError, new_secret, same
from tessera.jose import b64

KEY = bytes(range(32))


def test_sealed_data_opens_with_the_same_key_and_aad() -> None:
    master = MasterKey(KEY)
    sealed = master.seal(b"private key bytes", aad=b"kid-1")
    assert b"private key bytes" not in sealed
    assert MasterKey(KEY).unseal(sealed, aad=b"kid-1") == b"private key bytes"


def test_sealing_twice_gives_different_blobs() -> None:
    master = MasterKey(KEY)
    assert master.seal(b"same", aad=b"a") != master.seal(b"same", aad=b"a")


def test_sealed_data_refuses_another_aad() -> None:
    master = MasterKey(KEY)
    sealed = master.seal(b"private", aad=b"kid-1")
    with pytest.raises(MasterKeyError):
        master.unseal(sealed, aad=b"kid-2")


def test_sealed_data_refuses_another_master_key() -> None:
    sealed = MasterKey(KEY).seal(b"private", aad=b"kid-1")
    with pytest.raises(MasterKeyError):
        MasterKey(bytes(32)).unseal(sealed, aad=b"kid-1")


def test_tampered_sealed_data_is_refused() -> None:
    master = MasterKey(KEY)
    sealed = bytearray(master.seal(b"private", aad=b"kid-1"))
    sealed[-1] ^= 1
    with pytest.raises(MasterKeyError):
        master.unseal(bytes(sealed), aad=b"kid-1")


def test_master_key_must_be_32_bytes() -> None:
    with pytest.raises(MasterKeyError):
        MasterKey(bytes(31))


def test_keyed_hashes_differ_by_purpose_and_by_master_key() -> None:
    master = MasterKey(KEY)
    client = master.keyed_hash("client-secret", "value")
    refresh = master.keyed_hash("refresh-token", "value")
    assert client != refresh
    assert client == MasterKey(KEY).keyed_hash("client-secret", "value")
    assert client != MasterKey(bytes(32)).keyed_hash("client-secret", "value")
    assert len(client) == 64
    assert "value" not in client


def test_master_key_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "master.key"
    first = MasterKey.load(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(b64.decode(path.read_text().strip())) == 32
    contents = path.read_text()
    second = MasterKey.load(None, path)
    assert path.read_text() == contents
    sealed = first.seal(b"private", aad=b"k")
    assert second.unseal(sealed, aad=b"k") == b"private"


def test_environment_master_key_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    master = MasterKey.load(b64.encode_str(KEY), path)
    assert not path.exists()
    assert master.keyed_hash("p", "v") == MasterKey(KEY).keyed_hash("p", "v")


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        "AAAA=",  # padded
        "é" * 43,  # not ASCII
        b64.encode_str(bytes(16)),  # too short
        b64.encode_str(bytes(33)),  # too long
    ],
)
def test_malformed_environment_master_key_is_a_master_key_error(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_MASTER_KEY", value)
    settings = Settings(database_url="sqlite://", master_key_file=tmp_path / "unused.key")
    with pytest.raises(MasterKeyError):
        Provider(settings)
    assert not (tmp_path / "unused.key").exists()


def test_malformed_master_key_file_is_a_master_key_error(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text("definitely not a key\n")
    with pytest.raises(MasterKeyError):
        MasterKey.load(None, path)


def test_new_secrets_carry_256_bits_and_compare_in_constant_time() -> None:
    secret = new_secret()
    assert len(b64.decode(secret)) == 32
    assert new_secret() != secret
    assert same(secret, secret)
    assert not same(secret, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
