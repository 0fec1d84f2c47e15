"""Logout over real HTTP: RP-initiated logout (with and without an ID token hint, its
confirmation page, post-logout redirect URIs) and back-channel logout tokens delivered to real
HTTP endpoints of the clients that took part in the session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tessera import jose
from tessera.idp.services.id_tokens import SignIn
from tessera.idp.store.models import AuditEvent

from ..conftest import audit_events
from .browsing import Browser, Request, forms_of, person, query_of, redeem, relying_party
from .checks import assert_error_page, header, payload
from .receivers import Receiver
from .servers import BOTH_DATABASES, CHEAP_ARGON2, IdpServer, admin_token

pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, **CHEAP_ARGON2)

AFTER = "https://app.example/signed-out"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def browser(idp: IdpServer) -> Iterator[Browser]:
    browser = Browser(idp)
    yield browser
    browser.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def sign_in(
    idp: IdpServer, browser: Browser, client_id: str, secret: str | None, *who: str
) -> dict[str, Any]:
    """Sign in through the pages (``who``: username and password, unless the browser already
    has a session) and redeem the code: the client's tokens."""
    request = Request(client_id, scope="openid offline_access")
    page = browser.authorize(request)
    answered = browser.sign_in(page, *who) if who else page
    answer = query_of(answered)
    tokens = redeem(idp, request, answer["code"], client_id, secret)
    assert tokens.status_code == 200, tokens.text
    result: dict[str, Any] = tokens.json()
    return result


def refresh(idp: IdpServer, client_id: str, secret: str | None, token: str) -> httpx.Response:
    with idp.client() as http:
        return http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=(client_id, secret or ""),
        )


def logout_url(**params: str) -> str:
    return "/oauth2/logout?" + urlencode(params)


def events_named(idp: IdpServer, name: str) -> list[AuditEvent]:
    return [row for row in audit_events(idp.provider) if row.event == name]


def audited(idp: IdpServer, name: str, sid: str, count: int) -> list[AuditEvent]:
    """The ``name`` rows of the session ``sid``, once there are ``count`` (at most 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        rows = [row for row in events_named(idp, name) if sid in row.details]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_a_logout_with_the_sessions_id_token_ends_it_at_once(
    idp: IdpServer, browser: Browser
) -> None:
    client_id, secret = relying_party(idp, post_logout_redirect_uris=(AFTER,))
    username, password, user_id = person(idp)
    tokens = sign_in(idp, browser, client_id, secret, username, password)

    response = browser.http.get(
        logout_url(id_token_hint=tokens["id_token"], post_logout_redirect_uri=AFTER, state="s1")
    )
    assert response.status_code == 303
    assert response.headers["location"] == AFTER + "?state=s1"
    assert browser.session_cookie() is None  # the cookie is cleared
    # The session is over: no SSO any more, and the refresh family it gave is revoked.
    assert browser.authorize(Request(client_id)).status_code == 200
    refused = refresh(idp, client_id, secret, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    logout = events_named(idp, "logout")[-1]
    assert logout.subject == user_id and payload(tokens["id_token"])["sid"] in logout.details


def test_an_expired_id_token_is_still_a_hint(idp: IdpServer, browser: Browser) -> None:
    client_id, secret = relying_party(idp, post_logout_redirect_uris=(AFTER,))
    username, password, user_id = person(idp)
    tokens = sign_in(idp, browser, client_id, secret, username, password)
    sid = payload(tokens["id_token"])["sid"]
    long_ago = int(time.time()) - 2 * idp.settings.id_token_ttl
    with idp.provider.database.session() as session:
        expired = idp.provider.id_tokens.issue(
            SignIn(user_id, long_ago, ("pwd",), session_id=sid),
            client_id=client_id,
            now=long_ago,
            session=session,
        )
    response = browser.http.get(logout_url(id_token_hint=expired, post_logout_redirect_uri=AFTER))
    assert response.status_code == 303 and response.headers["location"] == AFTER


def test_without_a_hint_the_person_confirms(idp: IdpServer, browser: Browser) -> None:
    client_id, secret = relying_party(idp, post_logout_redirect_uris=(AFTER,))
    username, password, _ = person(idp)
    sign_in(idp, browser, client_id, secret, username, password)

    # A link on any site lands here: nothing happens before the person confirms.
    page = browser.http.get(logout_url(client_id=client_id, post_logout_redirect_uri=AFTER))
    assert page.status_code == 200 and "Sign out?" in page.text
    assert "form-action 'self' https://app.example" in page.headers["content-security-policy"]
    sign_in(idp, browser, client_id, secret)  # still signed in: SSO works

    stay = browser.submit(page, decision="stay")
    assert stay.status_code == 200 and "still signed in" in stay.text
    sign_in(idp, browser, client_id, secret)

    forged = {**forms_of(page)[0].fields, "csrf": "not-this-browsers", "decision": "logout"}
    assert browser.http.post("/oauth2/logout/confirm", data=forged).status_code == 403
    sign_in(idp, browser, client_id, secret)

    done = browser.submit(page, decision="logout")
    assert done.status_code == 303 and done.headers["location"] == AFTER
    assert browser.authorize(Request(client_id)).status_code == 200  # a sign-in page again


def test_a_logout_without_a_session_says_so(idp: IdpServer, browser: Browser) -> None:
    page = browser.http.get("/oauth2/logout")
    assert page.status_code == 200 and "You are signed out" in page.text


@pytest.mark.parametrize(
    "problem",
    ["unregistered", "no client", "bad hint", "other client"],
)
def test_a_logout_request_that_cannot_be_followed_is_a_page(
    idp: IdpServer, browser: Browser, problem: str
) -> None:
    client_id, secret = relying_party(idp, post_logout_redirect_uris=(AFTER,))
    other, _ = relying_party(idp, post_logout_redirect_uris=(AFTER,))
    username, password, _ = person(idp)
    tokens = sign_in(idp, browser, client_id, secret, username, password)
    params = {
        "unregistered": {"client_id": client_id, "post_logout_redirect_uri": AFTER + "/x"},
        "no client": {"post_logout_redirect_uri": AFTER},
        "bad hint": {"id_token_hint": tokens["access_token"], "post_logout_redirect_uri": AFTER},
        "other client": {"id_token_hint": tokens["id_token"], "client_id": other},
    }[problem]
    response = browser.http.get(logout_url(**params))
    assert response.status_code == 400 and "location" not in response.headers
    assert_error_page(response)
    sign_in(idp, browser, client_id, secret)  # nothing was logged out


def test_the_sessions_clients_get_a_logout_token_by_back_channel(
    idp: IdpServer, browser: Browser, receiver: Receiver
) -> None:
    first, first_secret = relying_party(idp, backchannel_logout_uri=receiver.url)
    second, second_secret = relying_party(idp, name="Chat", backchannel_logout_uri=receiver.url)
    bystander, _ = relying_party(idp, name="Never used", backchannel_logout_uri=receiver.url)
    username, password, user_id = person(idp)
    tokens = sign_in(idp, browser, first, first_secret, username, password)
    sign_in(idp, browser, second, second_secret)  # the same session, a second client
    sid = payload(tokens["id_token"])["sid"]

    response = browser.http.get(logout_url(id_token_hint=tokens["id_token"]))
    assert response.status_code == 200 and "You are signed out" in response.text

    forms = receiver.wait_for(2)
    assert len(forms) == 2 and {form["content-type"] for form in forms} == {
        "application/x-www-form-urlencoded"
    }
    keys = jose.KeySet.from_jwks(browser.http.get("/.well-known/jwks.json").json())
    audiences = set()
    for form in forms:
        token = form["logout_token"]
        assert header(token)["typ"] == "logout+jwt"
        claims = jose.Verifier(
            keys, algorithms=["RS256"], issuer=idp.url, audience=[first, second]
        ).verify(token)
        assert claims["sub"] == user_id and claims["sid"] == sid
        assert claims["events"] == {EVENT: {}} and "nonce" not in claims
        assert claims["jti"] and claims["exp"] > claims["iat"]
        audiences.add(claims["aud"])
    assert audiences == {first, second}  # not the client that took no part
    assert bystander not in audiences
    # Each delivery is audited once its answer is in: after the client has the token.
    sent = audited(idp, "logout.backchannel_sent", sid, 2)
    assert sorted(row.client_id for row in sent) == sorted([first, second])


def test_a_failing_back_channel_is_retried_audited_and_never_blocks(
    idp: IdpServer, browser: Browser
) -> None:
    broken = Receiver(status=503)
    try:
        client_id, secret = relying_party(idp, backchannel_logout_uri=broken.url)
        username, password, _ = person(idp)
        tokens = sign_in(idp, browser, client_id, secret, username, password)
        sid = payload(tokens["id_token"])["sid"]
        response = browser.http.get(logout_url(id_token_hint=tokens["id_token"]))
        assert response.status_code == 200  # the logout itself is done
        assert browser.authorize(Request(client_id)).status_code == 200
        assert len(broken.wait_for(3)) == 3  # three attempts, then it gives up
        failed = audited(idp, "logout.backchannel_failed", sid, 1)
        assert failed and failed[0].outcome == "failure" and "HTTP 503" in failed[0].details
        time.sleep(1.5)  # what a fourth attempt would have needed
        assert len(broken.forms) == 3
    finally:
        broken.close()


def test_disabling_a_user_tells_the_clients_of_their_sessions(
    idp: IdpServer, browser: Browser, receiver: Receiver
) -> None:
    client_id, secret = relying_party(idp, backchannel_logout_uri=receiver.url)
    username, password, user_id = person(idp)
    tokens = sign_in(idp, browser, client_id, secret, username, password)
    with idp.client() as http:
        admin = {"Authorization": f"Bearer {admin_token(http, 'admin', idp.admin_password)}"}
        changed = http.patch(
            f"/admin/tenants/default/users/{user_id}", json={"status": "disabled"}, headers=admin
        )
        assert changed.status_code == 200, changed.text
    forms = receiver.wait_for(1)
    assert len(forms) == 1
    assert payload(forms[0]["logout_token"])["sid"] == payload(tokens["id_token"])["sid"]
