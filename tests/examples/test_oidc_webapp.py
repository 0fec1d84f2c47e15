"""examples/oidc_webapp.py, run as examples/README.md says, against a real provider: the README's
first command creates the client (the real CLI, on the provider's database), its second starts
the app (a real process on an ephemeral port), and a browser made of httpx signs in at the
provider's pages, reads the claims, calls the guarded API and logs out."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ..idp.http.browsing import forms_of
from ..idp.http.checks import payload
from ..idp.http.servers import CHEAP_ARGON2, IdpServer, serving
from ..services import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "examples" / "README.md"
EXAMPLE = ROOT / "examples" / "oidc_webapp.py"


def readme_command(start: str) -> str:
    """The README's shell command that starts with ``start`` (continuation lines joined)."""
    text = README.read_text().replace("\\\n", " ")
    found = [line.strip() for line in text.splitlines() if line.strip().startswith(start)]
    assert len(found) == 1, found
    return found[0]


@dataclass
class Example:
    """The example app, running; the client the README's command created for it."""

    url: str
    client_id: str
    process: subprocess.Popen[str]


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    with serving("sqlite", tmp_path_factory.mktemp("oidc-example"), **CHEAP_ARGON2) as server:
        yield server


@pytest.fixture(scope="module")
def client(idp: IdpServer) -> dict[str, Any]:
    """The README's first command, run as written, on the provider's database."""
    command = shlex.split(readme_command(".venv/bin/tessera admin client create"))
    settings = idp.settings
    assert settings.master_key is not None
    env = {
        **os.environ,
        "TESSERA_DATABASE_URL": settings.database_url,
        "TESSERA_MASTER_KEY": settings.master_key.get_secret_value(),
        "TESSERA_MASTER_KEY_FILE": str(settings.master_key_file),
    }
    made = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    document: dict[str, Any] = json.loads(made.stdout)
    return document


@pytest.fixture(scope="module")
def example(idp: IdpServer, client: dict[str, Any]) -> Iterator[Example]:
    """The README's second command, the client's values filled in, on an ephemeral port."""
    words = shlex.split(readme_command("TESSERA_CLIENT_ID="))
    assigned = dict(word.split("=", 1) for word in words if re.fullmatch(r"[A-Z_]+=.*", word))
    argv = [word for word in words if not re.fullmatch(r"[A-Z_]+=.*", word)]
    assert assigned == {
        "TESSERA_CLIENT_ID": "<client_id>",
        "TESSERA_CLIENT_SECRET": "<client_secret>",
    }
    assert argv == [".venv/bin/python", "examples/oidc_webapp.py"]
    port = free_port()
    env = {
        **os.environ,
        "TESSERA_CLIENT_ID": client["client_id"],
        "TESSERA_CLIENT_SECRET": client["client_secret"],
        "TESSERA_ISSUER": idp.url,
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE)],  # .venv/bin/python: this interpreter
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/", timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the example did not start") from None
                time.sleep(0.1)
        yield Example(url, client["client_id"], process)
    finally:
        process.terminate()
        output, errors = process.communicate(timeout=15)
        assert f"Sign in with Tessera ({idp.url}) at {url}/" in output
        assert "Traceback" not in errors, errors


@pytest.fixture
def browser(idp: IdpServer) -> Iterator[httpx.Client]:
    """One cookie jar for the app and the provider (both on 127.0.0.1); no redirect followed."""
    with httpx.Client(timeout=10) as http:
        yield http


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def redirected(response: httpx.Response, to: str) -> str:
    """The Location of a redirect to ``to`` (a URL prefix)."""
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    target = response.headers["location"]
    assert target.startswith(to), target
    return target


def shown(page: httpx.Response, element: str) -> Any:
    """The JSON the example shows in ``<div id=element><pre>…</pre></div>``."""
    found = re.search(rf'<div id="{element}"><pre>(.*?)</pre></div>', page.text, re.S)
    assert found is not None, page.text
    return json.loads(html.unescape(found[1]))


def signed_in_at_provider(
    browser: httpx.Client, idp: IdpServer, example: Example, username: str, password: str
) -> httpx.Response:
    """ "Sign in with Tessera", through the sign-in page: the provider's next answer."""
    to_provider = redirected(browser.get(example.url + "/login"), idp.url + "/oauth2/authorize?")
    page = browser.get(to_provider)
    assert page.status_code == 200 and 'name="password"' in page.text
    form = forms_of(page)[0]
    return browser.post(
        idp.url + form.action, data={**form.fields, "username": username, "password": password}
    )


def test_sign_in_call_the_api_and_log_out(
    idp: IdpServer, example: Example, browser: httpx.Client
) -> None:
    home = browser.get(example.url + "/")
    assert home.status_code == 200 and 'href="/login">Sign in with Tessera</a>' in home.text

    to_provider = redirected(browser.get(example.url + "/login"), idp.url + "/oauth2/authorize?")
    asked = query(to_provider)
    assert asked["response_type"] == "code" and asked["client_id"] == example.client_id
    assert asked["redirect_uri"] == example.url + "/callback"
    assert asked["scope"] == "openid profile email demo:read"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["state"] and asked["nonce"]

    consent = signed_in_at_provider(browser, idp, example, "admin", idp.admin_password)
    assert consent.status_code == 200 and "Allow <strong>Example app</strong> access?" in (
        consent.text
    )
    form = forms_of(consent)[0]
    back = browser.post(idp.url + form.action, data={**form.fields, "decision": "allow"})
    callback = redirected(back, example.url + "/callback?")
    assert query(callback)["iss"] == idp.url
    redirected(browser.get(callback), "/")

    home = browser.get(example.url + "/")
    assert '<p id="welcome">Signed in as admin</p>' in home.text
    claims, userinfo = shown(home, "claims"), shown(home, "userinfo")
    assert claims["iss"] == idp.url and claims["aud"] == example.client_id
    assert claims["amr"] == ["pwd"] and claims["nonce"]
    assert userinfo == {
        "sub": claims["sub"],
        "preferred_username": "admin",
        "updated_at": userinfo["updated_at"],
    }

    called = browser.get(example.url + "/call-api")
    assert '<span id="api-status">200</span>' in called.text
    assert shown(called, "api-answer") == {
        "sub": claims["sub"],
        "tenant": "default",
        "client_id": example.client_id,
        "scopes": ["demo:read", "email", "openid", "profile"],
        "roles": ["admin", "member"],
    }
    refused = httpx.get(example.url + "/api/profile", headers={"authorization": "Bearer x.y.z"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")

    to_logout = redirected(browser.get(example.url + "/logout"), idp.url + "/oauth2/logout?")
    logout = query(to_logout)
    assert logout["post_logout_redirect_uri"] == example.url + "/"
    assert payload(logout["id_token_hint"])["sub"] == claims["sub"] and logout["state"]
    back_home = redirected(browser.get(to_logout), example.url + "/?state=")
    assert "tessera_session" not in browser.cookies  # the provider session is over
    signed_out = browser.get(back_home)
    assert '<p id="signed-out">You are signed out (of the provider too).</p>' in signed_out.text
    assert 'href="/login">Sign in with Tessera</a>' in signed_out.text
    # Signing in again takes the sign-in page: no provider session is left.
    to_provider = redirected(browser.get(example.url + "/login"), idp.url + "/oauth2/authorize?")
    again = browser.get(to_provider)
    assert again.status_code == 200 and 'name="password"' in again.text
    assert browser.get(example.url + "/call-api").headers["location"] == "/"


def test_a_person_who_does_not_allow_access_is_told(
    idp: IdpServer, example: Example, browser: httpx.Client
) -> None:
    idp.add_user("grace", "grace-password-1")
    consent = signed_in_at_provider(browser, idp, example, "grace", "grace-password-1")
    form = forms_of(consent)[0]
    back = browser.post(idp.url + form.action, data={**form.fields, "decision": "deny"})
    callback = redirected(back, example.url + "/callback?")
    assert query(callback)["error"] == "access_denied"
    page = browser.get(callback)
    assert '<p id="error">access_denied: the person did not allow access</p>' in page.text
    assert 'href="/login">Sign in with Tessera</a>' in browser.get(example.url + "/").text


def test_without_credentials_the_example_says_what_to_set() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TESSERA_")}
    ran = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 1
    assert "Set TESSERA_CLIENT_ID and TESSERA_CLIENT_SECRET" in ran.stderr
