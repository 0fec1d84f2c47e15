"""The revocation protocol's semantics and the in-memory list."""

from __future__ import annotations

import time

from tessera.guard.revocation import MemoryRevocationList, RevocationList, is_revoked


def test_memory_list_is_a_revocation_list() -> None:
    assert isinstance(MemoryRevocationList(), RevocationList)


def test_revoked_jti_until_it_expires() -> None:
    revocations = MemoryRevocationList()
    revocations.revoke("live", expires_at=time.time() + 60)
    revocations.revoke("gone", expires_at=time.time() - 1)
    assert revocations.is_revoked("live")
    assert not revocations.is_revoked("gone")
    assert not revocations.is_revoked("never")


def test_not_before_refuses_only_tokens_issued_earlier() -> None:
    revocations = MemoryRevocationList()
    revocations.revoke_subject("ada", not_before=100, expires_at=time.time() + 60)
    assert is_revoked(revocations, {"sub": "ada", "iat": 99})
    assert not is_revoked(revocations, {"sub": "ada", "iat": 100})
    assert not is_revoked(revocations, {"sub": "ada", "iat": 101})
    assert not is_revoked(revocations, {"sub": "bob", "iat": 1})


def test_a_token_without_iat_cannot_outlive_a_not_before() -> None:
    revocations = MemoryRevocationList()
    revocations.revoke_subject("ada", expires_at=time.time() + 60)
    assert is_revoked(revocations, {"sub": "ada"})
    assert is_revoked(revocations, {"sub": "ada", "iat": "late"})


def test_expired_not_before_is_forgotten() -> None:
    revocations = MemoryRevocationList()
    revocations.revoke_subject("ada", not_before=100, expires_at=time.time() - 1)
    assert revocations.not_before("ada") is None


def test_claims_of_the_wrong_type_are_not_looked_up() -> None:
    revocations = MemoryRevocationList()
    revocations.revoke("1", expires_at=time.time() + 60)
    assert not is_revoked(revocations, {"jti": 1})
