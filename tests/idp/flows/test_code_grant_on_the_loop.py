"""The authorization_code grant as the token endpoint makes it, on the event loop, on SQLite and
PostgreSQL: one read, then the claim and every write of the grant in one group-committed
transaction whose INSERTs are made only if that claim took the code; a code it does not redeem
is left as it was, for ``token_response`` to refuse."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tessera.idp.flows.client_auth import client_on_the_loop
from tessera.idp.flows.grants import code_grant_on_the_loop
from tessera.idp.provider import Provider
from tessera.idp.store.models import AuthorizationCode, RefreshFamily, User

from ..conftest import Registered, add_user, audit_events
from .test_code_grant import CONTEXT, REDIRECT, VERIFIER, code_client, code_for


@pytest.fixture
def ada(provider: Provider, tenant: str) -> User:
    user = add_user(provider, tenant)
    provider.keyring.signing_key(alg="RS256")  # the ID tokens' key, made before the first
    return user


def _on_the_loop(
    provider: Provider, client: Registered, codes: list[str], **form: str
) -> list[dict[str, Any] | None]:
    """``code_grant_on_the_loop`` for each of ``codes`` at once, on one loop: what each
    returned (``None``: left for ``token_response``)."""

    async def together() -> list[dict[str, Any] | None]:
        try:
            found = await client_on_the_loop(provider, {}, client.basic)
            return await asyncio.gather(
                *(
                    code_grant_on_the_loop(
                        provider,
                        found,
                        {"code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER, **form},
                        CONTEXT,
                    )
                    for code in codes
                )
            )
        finally:
            await provider.database.close_loop_connections()

    return asyncio.run(together())


def _stored(provider: Provider, code: str) -> AuthorizationCode:
    with provider.database.session(readonly=True) as session:
        stored = session.get(AuthorizationCode, provider.codes.digest(code))
        assert stored is not None
        return stored


def test_on_the_loop_a_code_is_claimed_and_its_tokens_written_in_one_transaction(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant, grants=("authorization_code", "refresh_token"))
    codes = [code_for(provider, client, ada) for _ in range(3)]
    answers = _on_the_loop(provider, client, codes)
    assert all(answer is not None and "refresh_token" in answer for answer in answers)
    for code, answer in zip(codes, answers, strict=True):
        assert answer is not None
        stored = _stored(provider, code)
        jti = provider.issuer.verifier().verify(answer["access_token"])["jti"]
        assert stored.redeemed_at is not None and stored.access_jti == jti
        with provider.database.session(readonly=True) as session:
            family = session.get(RefreshFamily, stored.family_id)
            assert family is not None and (family.user_id, family.client_id) == (ada.id, client.id)
    issued = [event for event in audit_events(provider) if event.event == "token.issued"]
    assert sorted(orjson.loads(event.details)["jti"] for event in issued) == sorted(
        _stored(provider, code).access_jti or "" for code in codes
    )


def test_on_the_loop_one_of_simultaneous_redemptions_claims_and_the_others_write_nothing(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant, grants=("authorization_code", "refresh_token"))
    code = code_for(provider, client, ada)
    answers = _on_the_loop(provider, client, [code] * 5)
    assert sum(answer is not None for answer in answers) == 1
    with provider.database.session(readonly=True) as session:
        families = session.scalars(select(RefreshFamily.id)).all()
    assert families == [_stored(provider, code).family_id]
    assert len([event for event in audit_events(provider) if event.event == "token.issued"]) == 1


def test_on_the_loop_a_code_that_does_not_redeem_is_left_as_it_was(
    provider: Provider, tenant: str, ada: User
) -> None:
    client = code_client(provider, tenant)
    code = code_for(provider, client, ada)
    assert _on_the_loop(provider, client, [code], code_verifier="x" * 43) == [None]
    assert _on_the_loop(provider, client, ["not-a-code"]) == [None]
    assert _stored(provider, code).redeemed_at is None  # token_response spends and refuses it
    assert [
        event.event for event in audit_events(provider) if event.event.startswith(("code", "token"))
    ] == []
