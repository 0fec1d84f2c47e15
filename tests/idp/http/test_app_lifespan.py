"""The started app's life: what it holds for good is left out of the garbage collector's full
collections (a pause of tens of milliseconds every few thousand requests otherwise)."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tessera import jose
from tessera.idp.config import Settings
from tessera.idp.http.app import create_app

from ...services import migrated_database


def _app(url: str) -> FastAPI:
    return create_app(
        Settings(
            database_url=url,
            master_key=jose.b64.encode_str(b"\x01" * 32),
            master_key_file=Path(url.removeprefix("sqlite:///")).with_name("master.key"),
            issuer="http://testserver",
        )
    )


def test_a_started_app_leaves_what_it_holds_for_life_out_of_full_collections(
    tmp_path: Path,
) -> None:
    gc.unfreeze()
    try:
        with (
            migrated_database("sqlite", tmp_path) as url,
            TestClient(_app(url)) as client,
        ):  # runs the lifespan: the provider starts
            frozen = gc.get_freeze_count()
            tracked = len(gc.get_objects())
            assert client.get("/.well-known/jwks.json").status_code == 200
        # Everything the start made (mappings, routes, keys) is frozen; what requests make
        # afterwards is collected as before.
        assert frozen > 10_000 and tracked < frozen
    finally:
        gc.unfreeze()
