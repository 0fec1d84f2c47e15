"""node ``openid-client`` v6 (pinned in openid_client/package.json), unchanged, as a relying party:
discovery, code + PKCE, the RFC 9207 ``iss`` check, ID token validation, userinfo, refresh — the
browser part through the real sign-in page. A mixed-up answer (another issuer's ``iss``) is
refused by the client itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from .browsing import Browser, person, relying_party
from .servers import CHEAP_ARGON2, IdpServer

pytestmark = [pytest.mark.slow, pytest.mark.idp(**CHEAP_ARGON2)]

HERE = Path(__file__).resolve().parent / "openid_client"
CALLBACK = "https://rp.example/callback"


@pytest.fixture(scope="module")
def node() -> str:
    """node, with openid-client installed from the lock file (npm ci) on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js 20 and npm are required for the openid-client interop test")
    if not (HERE / "node_modules" / "openid-client").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True
        )
    return node


def rp(node: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [node, "rp.mjs", *args], cwd=HERE, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_openid_client_signs_in_reads_userinfo_and_refreshes(idp: IdpServer, node: str) -> None:
    client_id, secret = relying_party(idp, redirect_uris=(CALLBACK,))
    assert secret is not None
    username, password, user_id = person(idp, email="ada@example.org")
    started = rp(node, "start", idp.url, client_id, secret, CALLBACK)
    assert started["url"].startswith(f"{idp.url}/oauth2/authorize?")

    browser = Browser(idp)
    try:
        back = browser.sign_in(browser.http.get(started["url"]), username, password)
    finally:
        browser.close()
    assert back.status_code == 303
    callback = back.headers["location"]
    state, nonce, verifier = started["state"], started["nonce"], started["verifier"]

    finished = rp(node, "finish", idp.url, client_id, secret, callback, state, nonce, verifier)
    assert "refused" not in finished, finished
    assert finished["claims"]["sub"] == user_id and finished["claims"]["nonce"] == nonce
    assert finished["claims"]["iss"] == idp.url and finished["claims"]["aud"] == client_id
    assert finished["userinfo"]["email"] == "ada@example.org"
    assert finished["userinfo"]["preferred_username"] == username
    assert finished["refreshed"] == {"sub": user_id, "rotated": True}


def test_openid_client_refuses_an_answer_from_another_issuer(idp: IdpServer, node: str) -> None:
    client_id, secret = relying_party(idp, redirect_uris=(CALLBACK,))
    assert secret is not None
    username, password, _ = person(idp)
    started = rp(node, "start", idp.url, client_id, secret, CALLBACK)
    browser = Browser(idp)
    try:
        back = browser.sign_in(browser.http.get(started["url"]), username, password)
    finally:
        browser.close()
    params = dict(parse_qsl(urlsplit(back.headers["location"]).query))
    params["iss"] = "https://attacker.example"  # a mix-up: the code sent to the wrong server
    mixed = CALLBACK + "?" + urlencode(params)
    state, nonce, verifier = started["state"], started["nonce"], started["verifier"]
    finished = rp(node, "finish", idp.url, client_id, secret, mixed, state, nonce, verifier)
    assert "refused" in finished, finished
    assert '"iss" (issuer)' in finished["detail"], finished
