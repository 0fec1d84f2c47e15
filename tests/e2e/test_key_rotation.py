"""Key rotation seen from the guards: the next key is published before it signs, so a guard that
cached the JWK Set before the switch verifies the new tokens without fetching again; the old key
stays published, so tokens it signed keep verifying until they expire."""

from __future__ import annotations

import time

import pytest

from ..idp.http.checks import header, payload
from ..idp.http.servers import DEMO, IdpServer, client_credentials, serving
from .conftest import ApiFactory

PREPUBLISH = 2  # seconds between publication and signing (the default is an hour)


def test_rotation_keeps_old_tokens_valid_and_new_keys_prepublished(
    tmp_path_factory: pytest.TempPathFactory, protected_api: ApiFactory
) -> None:
    with serving("sqlite", tmp_path_factory.mktemp("rotation"), key_prepublish=PREPUBLISH) as idp:
        check_rotation(idp, protected_api)


def check_rotation(idp: IdpServer, protected_api: ApiFactory) -> None:
    early = protected_api(idp.url)  # its JWK Set is from before the rotation
    with idp.client() as http:
        old = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
        old_kid = header(old)["kid"]
        assert early.get("/whoami", old).status_code == 200

        new_kid = idp.provider.keyring.rotate()  # what `tessera keys rotate` does
        published = {jwk["kid"] for jwk in http.get("/.well-known/jwks.json").json()["keys"]}
        assert published == {old_kid, new_kid}
        during = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
        assert header(during)["kid"] == old_kid  # published, not signing yet

        cached = protected_api(idp.url)  # caches the JWK Set after publication, before the switch
        assert cached.get("/whoami", during).status_code == 200
        assert cached.keys.fetches == 1

        deadline = time.monotonic() + PREPUBLISH + 5
        while True:
            new = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
            if header(new)["kid"] == new_kid:
                break
            assert time.monotonic() < deadline, "the new key never started signing"
            time.sleep(0.2)

        response = cached.get("/whoami", new)
        assert response.status_code == 200, response.text
        assert cached.keys.fetches == 1  # known in advance: no fetch on the switch

        late = protected_api(idp.url)  # fetches the JWK Set after the switch
        for api in (early, cached, late):
            for token in (old, during):
                response = api.get("/whoami", token)
                assert response.status_code == 200, response.text
        assert late.get("/whoami", new).status_code == 200

        after = {jwk["kid"] for jwk in http.get("/.well-known/jwks.json").json()["keys"]}
        assert after == {old_kid, new_kid}

    timeline = idp.provider.keyring.keys(time.time())  # every stored key with its timeline
    keys = {info.kid: info for info in timeline}
    assert keys[old_kid].state(time.time()) == "retired"
    assert keys[new_kid].state(time.time()) == "active"
    # the retired key stays published until every token it signed has expired
    assert keys[old_kid].expires_at >= max(payload(old)["exp"], payload(during)["exp"])
