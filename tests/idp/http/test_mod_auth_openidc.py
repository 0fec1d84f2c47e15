"""Apache with mod_auth_openidc (Debian's packages, installed by tools/ensure-peers.sh), unchanged,
in front of a protected location: a person who opens it lands on Tessera's sign-in page and comes
back signed in, Apache having redeemed the code (PKCE S256) and validated the ID token itself."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ...services import free_port
from .browsing import Browser, forms_of, person, relying_party
from .servers import CHEAP_ARGON2, IdpServer

pytestmark = [pytest.mark.slow, pytest.mark.idp(**CHEAP_ARGON2)]

APACHE = "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
CONFIG = """
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
DefaultRuntimeDir {root}
ErrorLog {root}/error.log
LogLevel warn auth_openidc:info
User www-data
Group www-data
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule headers_module {modules}/mod_headers.so
LoadModule mime_module {modules}/mod_mime.so
LoadModule dir_module {modules}/mod_dir.so
DirectoryIndex index.html
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so
TypesConfig /etc/mime.types
DocumentRoot {root}/www

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI http://127.0.0.1:{port}/protected/redirect_uri
OIDCCryptoPassphrase {passphrase}
OIDCScope "openid profile email"
OIDCPKCEMethod S256
OIDCProviderTokenEndpointAuth client_secret_basic
OIDCRemoteUserClaim preferred_username

<Location /protected>
    AuthType openid-connect
    Require valid-user
    Header always set X-Remote-User "expr=%{{REMOTE_USER}}"
</Location>
"""


@pytest.fixture(scope="module")
def apache(idp: IdpServer) -> Iterator[str]:
    """Apache on an ephemeral port, its /protected location guarded by mod_auth_openidc as a
    confidential client of the provider; yields its base URL."""
    if not Path(APACHE).exists() or not (MODULES / "mod_auth_openidc.so").exists():
        pytest.fail(
            "Apache and mod_auth_openidc are required (tools/ensure-peers.sh installs them)"
        )
    port = free_port()
    client_id, secret = relying_party(
        idp, redirect_uris=(f"http://127.0.0.1:{port}/protected/redirect_uri",), name="Apache"
    )
    # Apache's workers run as www-data: a directory they may read (pytest's tmp is private).
    root = Path(tempfile.mkdtemp(prefix="tessera-apache-"))
    root.chmod(0o755)
    (root / "www" / "protected").mkdir(parents=True)
    (root / "www" / "protected" / "index.html").write_text("<p>the protected page</p>\n")
    for path in (root / "www", root / "www" / "protected"):
        path.chmod(0o755)
    (root / "www" / "protected" / "index.html").chmod(0o644)
    config = root / "httpd.conf"
    config.write_text(
        CONFIG.format(
            port=port,
            root=root,
            modules=MODULES,
            issuer=idp.url,
            client_id=client_id,
            client_secret=secret,
            passphrase=secrets.token_urlsafe(24),
        )
    )
    server = subprocess.Popen(
        [APACHE, "-f", str(config), "-DFOREGROUND"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "APACHE_RUN_DIR": str(root)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log = (root / "error.log").read_text() if (root / "error.log").exists() else ""
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"Apache did not start: {output}\n{log}")
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)
        shutil.rmtree(root, ignore_errors=True)


def test_a_person_signs_in_at_tessera_and_apache_lets_them_in(idp: IdpServer, apache: str) -> None:
    username, password, _ = person(idp)
    browser = Browser(idp)
    try:
        http = browser.http
        first = http.get(apache + "/protected/")
        assert first.status_code == 302  # not signed in: off to the provider
        authorize = first.headers["location"]
        assert authorize.startswith(f"{idp.url}/oauth2/authorize?")
        assert "code_challenge_method=S256" in authorize

        page = http.get(authorize)
        assert page.status_code == 200 and forms_of(page)[0].action == "/oauth2/authorize/sign-in"
        back = browser.sign_in(page, username, password)
        assert back.status_code == 303
        callback = back.headers["location"]
        assert callback.startswith(apache + "/protected/redirect_uri?")

        redeemed = http.get(callback)  # Apache redeems the code and checks the ID token
        assert redeemed.status_code == 302, redeemed.text
        assert redeemed.headers["location"].endswith("/protected/")
        inside = http.get(apache + "/protected/")
        assert inside.status_code == 200 and "the protected page" in inside.text
        assert inside.headers["x-remote-user"] == username

        # A second visit of a signed-out browser at Apache goes straight through Tessera's
        # single sign-on: no page, a code at once.
        http.cookies.delete("mod_auth_openidc_session")
        again = http.get(http.get(apache + "/protected/").headers["location"])
        assert again.status_code == 303
        assert again.headers["location"].startswith(apache + "/protected/redirect_uri?")
    finally:
        browser.close()


def test_apache_is_refused_nothing_it_should_not_get(idp: IdpServer, apache: str) -> None:
    with httpx.Client(timeout=10) as http:
        forged = http.get(apache + "/protected/redirect_uri?code=forged&state=forged")
        assert forged.status_code >= 400  # no session from a code nobody issued
        assert http.get(apache + "/protected/").status_code == 302
