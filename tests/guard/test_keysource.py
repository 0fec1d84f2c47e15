"""Static keys and JWKS files: a file is read again when it changes, and a bad change is ignored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tessera import jose
from tessera.guard.keysource import JwksFile, StaticKeys, as_key_source
from tessera.guard.remote import RemoteJwks


def write(path: Path, keys: list[jose.Key], mtime: int) -> None:
    path.write_text(json.dumps(jose.KeySet(keys).to_jwks()))
    os.utime(path, ns=(mtime, mtime))


def test_jwks_file_is_read_again_when_it_changes(
    tmp_path: Path, signing_key: jose.Key, next_key: jose.Key
) -> None:
    path = tmp_path / "jwks.json"
    write(path, [signing_key], 1_000_000_000)
    source = JwksFile(path, poll=0)
    first = source.get()
    assert source.get() is first
    write(path, [signing_key, next_key], 2_000_000_000)
    assert source.get().get("key-2") is not None


def test_jwks_file_polls_at_most_once_per_interval_but_refresh_looks_now(
    tmp_path: Path, signing_key: jose.Key, next_key: jose.Key
) -> None:
    path = tmp_path / "jwks.json"
    write(path, [signing_key], 1_000_000_000)
    source = JwksFile(path, poll=3600)
    write(path, [signing_key, next_key], 2_000_000_000)
    assert source.get().get("key-2") is None
    assert source.refresh().get("key-2") is not None


def test_a_broken_jwks_file_keeps_the_last_good_keys(tmp_path: Path, signing_key: jose.Key) -> None:
    path = tmp_path / "jwks.json"
    write(path, [signing_key], 1_000_000_000)
    source = JwksFile(path, poll=0)
    path.write_text("{not json")
    assert source.get().get("key-1") is not None
    path.unlink()
    assert source.get().get("key-1") is not None


def test_a_missing_jwks_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        JwksFile(tmp_path / "absent.json")


def test_static_keys_accept_a_key_a_set_or_a_jwks(signing_key: jose.Key) -> None:
    for keys in (signing_key, jose.KeySet([signing_key]), jose.KeySet([signing_key]).to_jwks()):
        assert StaticKeys(keys).get().get("key-1") is not None


def test_as_key_source_passes_sources_through_and_refuses_the_rest() -> None:
    remote = RemoteJwks("https://id.example/jwks")
    assert as_key_source(remote) is remote
    with pytest.raises(jose.UsageError):
        as_key_source(42)  # type: ignore[arg-type]
