"""The authorization endpoint and its pages over real HTTP: sign-in, SSO, prompt and max_age,
consent, the second factor, tenants, lockout, and every way a request can be wrong. A browser is
httpx with its cookie jar (the real-Chromium run is in tests/e2e/test_browser_sso.py)."""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import httpx
import pyotp
import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata

from tessera.idp.store.models import Client, User

from ..conftest import audit_events
from .browsing import (
    REDIRECT,
    Browser,
    Request,
    enrol_totp,
    forms_of,
    person,
    query_of,
    redeem,
    relying_party,
)
from .checks import assert_error_page, payload
from .servers import BOTH_DATABASES, CHEAP_ARGON2, IdpServer, admin_token

pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, **CHEAP_ARGON2)


@pytest.fixture
def browser(idp: IdpServer) -> Browser:
    return Browser(idp)


def test_discovery_describes_the_code_flow_and_authlib_accepts_it(http: httpx.Client) -> None:
    document = http.get("/.well-known/openid-configuration").json()
    OpenIDProviderMetadata(document).validate()  # raises on anything OIDC Discovery forbids
    assert document["authorization_endpoint"].endswith("/oauth2/authorize")
    assert document["response_types_supported"] == ["code"]
    assert document["response_modes_supported"] == ["query", "form_post"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert "authorization_code" in document["grant_types_supported"]
    assert document["id_token_signing_alg_values_supported"][0] == "RS256"
    assert document["end_session_endpoint"].endswith("/oauth2/logout")
    assert document["backchannel_logout_supported"] is True
    assert document["backchannel_logout_session_supported"] is True


def test_a_person_signs_in_and_the_client_gets_tokens_of_that_sign_in(
    idp: IdpServer, browser: Browser
) -> None:
    client_id, secret = relying_party(idp)
    username, password, user_id = person(idp, email="ada@example.org")
    request = Request(client_id)
    page = browser.authorize(request)
    assert page.status_code == 200
    assert 'autocomplete="username"' in page.text and 'autocomplete="current-password"' in page.text
    assert '<p class="tenant">Default</p>' in page.text and "<strong>Wiki</strong>" in page.text

    answer = query_of(browser.sign_in(page, username, password))
    assert answer["state"] == request.state and answer["iss"] == idp.url
    tokens = redeem(idp, request, answer["code"], client_id, secret)
    assert tokens.status_code == 200, tokens.text
    claims = payload(tokens.json()["id_token"])
    assert claims["sub"] == user_id and claims["nonce"] == request.nonce
    assert claims["amr"] == ["pwd"] and claims["aud"] == client_id and "sid" in claims
    assert abs(claims["auth_time"] - time.time()) < 30
    assert tokens.json()["scope"] == "openid profile email"


def test_pages_carry_the_headers_that_keep_them_safe(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp)
    page = browser.authorize(Request(client_id))
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "form-action 'self' https://app.example" in policy
    assert "unsafe-inline" not in policy and "<script>" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    # The style sheet the page links is served, from this origin.
    assert browser.http.get("/assets/tessera.css").status_code == 200
    assert browser.http.get("/assets/..%2Fconsent.html").status_code == 404


def test_the_session_cookie_is_new_at_every_sign_in(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp)
    username, password, _ = person(idp)
    browser.http.cookies.set("tessera_session", "planted-by-an-attacker", domain="127.0.0.1")
    page = browser.authorize(Request(client_id))
    assert page.status_code == 200  # the planted value is no session
    signed = browser.sign_in(page, username, password)
    cookie = next(h for h in signed.headers.get_list("set-cookie") if "tessera_session=" in h)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    first = browser.session_cookie()
    assert first and first != "planted-by-an-attacker"
    again = browser.authorize(Request(client_id, extra={"prompt": "login"}))
    browser.sign_in(again, username, password)
    assert browser.session_cookie() not in (first, None)


def test_a_second_client_signs_in_without_a_page(idp: IdpServer, browser: Browser) -> None:
    first, _ = relying_party(idp)
    second, secret = relying_party(idp, name="Chat")
    username, password, user_id = person(idp)
    query_of(browser.sign_in(browser.authorize(Request(first)), username, password))
    request = Request(second)
    answer = query_of(browser.authorize(request))  # straight back: single sign-on
    tokens = redeem(idp, request, answer["code"], second, secret).json()
    assert payload(tokens["id_token"])["sub"] == user_id


def test_prompt_none_without_a_session_is_login_required(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp)
    request = Request(client_id, extra={"prompt": "none"})
    answer = query_of(browser.authorize(request))
    assert answer["error"] == "login_required"
    assert answer["state"] == request.state and answer["iss"] == idp.url


def test_prompt_login_and_max_age_ask_again_once(idp: IdpServer, browser: Browser) -> None:
    client_id, secret = relying_party(idp)
    username, password, _ = person(idp)
    query_of(browser.sign_in(browser.authorize(Request(client_id)), username, password))
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        request = Request(client_id, extra=extra)
        page = browser.authorize(request)
        assert page.status_code == 200 and "sign in again" in page.text.lower()
        answer = query_of(browser.sign_in(page, username, password))  # no second page
        claims = payload(redeem(idp, request, answer["code"], client_id, secret).json()["id_token"])
        assert time.time() - claims["auth_time"] < 30
    # max_age that the session meets: no page.
    query_of(browser.authorize(Request(client_id, extra={"max_age": "3600"})))


def test_wrong_password_shows_the_page_again_without_saying_which(
    idp: IdpServer, browser: Browser
) -> None:
    client_id, _ = relying_party(idp)
    username, _, _ = person(idp)
    page = browser.authorize(Request(client_id))
    for name in (username, "nobody-here"):
        again = browser.sign_in(page, name, "not the password")
        assert again.status_code == 401 and "Wrong username or password." in again.text
        assert name in again.text  # the username stays filled in
        page = again


def test_an_unknown_client_or_unregistered_redirect_uri_is_a_page_not_a_redirect(
    idp: IdpServer, browser: Browser
) -> None:
    client_id, _ = relying_party(idp, redirect_uris=(REDIRECT, "http://127.0.0.1/native"))
    tricks = [
        REDIRECT + "/",
        REDIRECT.upper(),
        "https://APP.example/callback",
        REDIRECT + "/extra",
        REDIRECT + "?next=1",
        REDIRECT + "#fragment",
        "https://app.example@evil.example/callback",
        "https://evil.example@app.example/callback",
        "https://app.example:8443/callback",
        "http://app.example/callback",
        "https://app.example.evil.example/callback",
        "http://localhost:9000/native",
        "http://127.0.0.1:9000/native/../other",
    ]
    for uri in tricks:
        response = browser.authorize(Request(client_id, redirect_uri=uri))
        assert response.status_code == 400, uri
        assert_error_page(response)
        assert "location" not in response.headers and "not one the application" in response.text
    unknown = browser.authorize(Request("no-such-client"))
    assert unknown.status_code == 400 and "location" not in unknown.headers
    assert_error_page(unknown)
    # RFC 8252 §7.3: a loopback redirect URI with any port.
    query_of(
        browser.authorize(
            Request(
                client_id, redirect_uri="http://127.0.0.1:51234/native", extra={"prompt": "none"}
            )
        )
    )


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "admin:everything"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"request": "eyJ.eyJ.sig"}, "request_not_supported"),
        ({"request_uri": "https://evil.example/r"}, "request_uri_not_supported"),
        ({"id_token_hint": "not-a-token"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
def test_a_wrong_request_goes_back_with_its_error_state_and_iss(
    idp: IdpServer, browser: Browser, extra: dict[str, str | None], error: str
) -> None:
    client_id, _ = relying_party(idp)
    request = Request(client_id)
    params = {**request.params(), **extra}
    response = browser.http.get(
        "/oauth2/authorize?"
        + urlencode({name: value for name, value in params.items() if value is not None})
    )
    answer = query_of(response)
    assert response.headers["location"].startswith(REDIRECT + "?")
    assert answer["error"] == error, answer
    assert answer["state"] == request.state and answer["iss"] == idp.url


def test_a_repeated_parameter_is_refused(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp)
    url = Request(client_id).url()
    assert query_of(browser.http.get(url + "&scope=openid"))["error"] == "invalid_request"
    doubled = browser.http.get(url + "&client_id=other")
    assert doubled.status_code == 400 and "location" not in doubled.headers


def test_a_client_without_the_code_grant_is_unauthorized(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp, grant_types=("authorization_code",))
    with idp.provider.database.session() as session:
        row = session.get(Client, client_id)
        assert row is not None
        row.grant_types = "client_credentials"
    assert query_of(browser.authorize(Request(client_id)))["error"] == "unauthorized_client"


def test_offline_access_only_for_a_client_that_may_refresh(
    idp: IdpServer, browser: Browser
) -> None:
    client_id, secret = relying_party(idp, grant_types=("authorization_code",))
    username, password, _ = person(idp)
    request = Request(client_id, scope="openid offline_access")
    answer = query_of(browser.sign_in(browser.authorize(request), username, password))
    tokens = redeem(idp, request, answer["code"], client_id, secret).json()
    assert tokens["scope"] == "openid" and "refresh_token" not in tokens


def test_form_post_answers_with_a_form_for_the_client(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp)
    username, password, _ = person(idp)
    request = Request(client_id, extra={"response_mode": "form_post"})
    posted = browser.sign_in(browser.authorize(request), username, password)
    assert posted.status_code == 200
    form = forms_of(posted)[0]
    assert form.action == REDIRECT and form.method == "post"
    assert form.fields["state"] == request.state and form.fields["iss"] == idp.url
    assert len(form.fields["code"]) >= 43
    assert '<script src="/assets/form_post.js"' in posted.text
    assert "form-action 'self' https://app.example" in posted.headers["content-security-policy"]


def test_every_echoed_value_is_escaped(idp: IdpServer, browser: Browser) -> None:
    evil = '"><script>alert(1)</script>'
    client_id, _ = relying_party(idp, name=evil)
    request = Request(client_id, state=evil, extra={"login_hint": evil, "nonce": evil})
    page = browser.authorize(request)
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    username, password, _ = person(idp)
    # The state goes back to the client exactly as it came, encoded in the URL.
    assert query_of(browser.sign_in(page, username, password))["state"] == evil


def test_a_form_without_this_browsers_token_is_refused(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp)
    username, password, _ = person(idp)
    page = browser.authorize(Request(client_id))
    form = forms_of(page)[0]
    fields = {**form.fields, "username": username, "password": password}
    assert browser.http.post(form.action, data={**fields, "csrf": "forged"}).status_code == 403
    without = {name: value for name, value in fields.items() if name != "csrf"}
    assert browser.http.post(form.action, data=without).status_code == 403
    # Another browser (an attacker's page posting its own valid form) has another cookie.
    other = Browser(idp)
    response = other.http.post(form.action, data=fields)
    assert response.status_code == 403 and other.session_cookie() is None
    # The sealed request cannot be altered either.
    tampered = {**fields, "request": fields["request"][:-4] + "AAAA"}
    assert browser.http.post(form.action, data=tampered).status_code == 400
    assert browser.session_cookie() is None


def test_third_party_clients_ask_consent_once(idp: IdpServer, browser: Browser) -> None:
    client_id, secret = relying_party(idp, first_party=False, name="Partner")
    username, password, _ = person(idp)
    request = Request(client_id, scope="openid email demo:read")
    consent = browser.sign_in(browser.authorize(request), username, password)
    assert consent.status_code == 200 and "Allow" in consent.text
    assert "See your email address" in consent.text and "demo:read" in consent.text
    answer = query_of(browser.submit(consent, decision="allow"))
    assert redeem(idp, request, answer["code"], client_id, secret).status_code == 200

    query_of(browser.authorize(Request(client_id, scope="openid email")))  # remembered
    query_of(browser.authorize(Request(client_id, extra={"prompt": "none"}, scope="openid")))
    asked_again = browser.authorize(Request(client_id, extra={"prompt": "consent"}))
    assert asked_again.status_code == 200 and "Allow" in asked_again.text
    more = Request(client_id, scope="openid profile", extra={"prompt": "none"})
    assert query_of(browser.authorize(more))["error"] == "consent_required"

    denied = Request(client_id, scope="openid profile")
    answer = query_of(browser.submit(browser.authorize(denied), decision="deny"))
    assert answer["error"] == "access_denied" and answer["state"] == denied.state


def test_a_second_factor_is_asked_and_named_in_the_id_token(
    idp: IdpServer, browser: Browser
) -> None:
    client_id, secret = relying_party(idp)
    username, password, user_id = person(idp)
    totp = enrol_totp(idp, user_id)
    request = Request(client_id)
    code_page = browser.sign_in(browser.authorize(request), username, password)
    assert code_page.status_code == 200 and 'autocomplete="one-time-code"' in code_page.text
    wrong = browser.submit(code_page, otp="000000" if totp.now() != "000000" else "111111")
    assert wrong.status_code == 401 and "not right" in wrong.text
    answer = query_of(browser.submit(wrong, otp=totp.now()))
    claims = payload(redeem(idp, request, answer["code"], client_id, secret).json()["id_token"])
    assert claims["amr"] == ["pwd", "otp"] and claims["acr"] == "mfa"


def test_acr_values_mfa_enrols_a_person_without_a_factor(idp: IdpServer, browser: Browser) -> None:
    client_id, secret = relying_party(idp)
    username, password, _ = person(idp)
    request = Request(client_id, extra={"acr_values": "mfa"})
    enrol = browser.sign_in(browser.authorize(request), username, password)
    assert enrol.status_code == 200 and "Add an authenticator" in enrol.text
    secret_key = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol.text)
    assert secret_key is not None and 'src="data:image/svg+xml;base64,' in enrol.text
    codes = browser.submit(enrol, otp=pyotp.TOTP(secret_key.group(1)).now())
    assert codes.status_code == 200 and "recovery codes" in codes.text.lower()
    assert len(re.findall(r"<li><code>[a-z0-9]{5}-[a-z0-9]{5}</code></li>", codes.text)) >= 8
    answer = query_of(browser.submit(codes))
    claims = payload(redeem(idp, request, answer["code"], client_id, secret).json()["id_token"])
    assert claims["acr"] == "mfa"
    # The SSO session has the factor now: another acr_values=mfa request needs no page.
    query_of(browser.authorize(Request(client_id, extra={"acr_values": "mfa"})))


def test_a_user_of_another_tenant_cannot_sign_in_to_this_tenants_client(
    idp: IdpServer, browser: Browser
) -> None:
    idp.add_tenant("tenant-b")
    client_a, _ = relying_party(idp)
    username, password, _ = person(idp, "tenant-b")
    page = browser.authorize(Request(client_a))
    refused = browser.sign_in(page, username, password)
    assert refused.status_code == 401 and browser.session_cookie() is None
    # Signed in at tenant B's client, the session is still nobody at tenant A's.
    client_b, _ = relying_party(idp, tenant_id="tenant-b")
    query_of(browser.sign_in(browser.authorize(Request(client_b)), username, password))
    assert browser.authorize(Request(client_a)).status_code == 200  # a sign-in page


def test_a_disabled_user_with_a_live_session_gets_no_code(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp)
    username, password, user_id = person(idp)
    query_of(browser.sign_in(browser.authorize(Request(client_id)), username, password))
    with idp.provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.status = "disabled"
    again = browser.authorize(Request(client_id))
    assert again.status_code == 200 and "location" not in again.headers
    assert browser.sign_in(again, username, password).status_code == 401


def test_the_lockout_holds_for_the_pages(idp: IdpServer, browser: Browser) -> None:
    client_id, _ = relying_party(idp)
    username, password, _ = person(idp)
    page = browser.authorize(Request(client_id))
    statuses = [browser.sign_in(page, username, "wrong").status_code for _ in range(4)]
    assert statuses[:3] == [401, 401, 401] and statuses[3] == 429
    locked = browser.sign_in(page, username, password)  # even the right password waits
    assert locked.status_code == 429 and "Too many attempts" in locked.text
    assert int(locked.headers["retry-after"]) >= 1


def test_an_admin_sees_and_withdraws_a_consent(idp: IdpServer, browser: Browser) -> None:
    client_id, secret = relying_party(idp, first_party=False, name="Partner")
    username, password, user_id = person(idp)
    request = Request(client_id, scope="openid offline_access")
    consent = browser.sign_in(browser.authorize(request), username, password)
    answer = query_of(browser.submit(consent, decision="allow"))
    tokens = redeem(idp, request, answer["code"], client_id, secret).json()
    assert "refresh_token" in tokens

    with idp.client() as http:
        admin = {"Authorization": f"Bearer {admin_token(http, 'admin', idp.admin_password)}"}
        url = f"/admin/tenants/default/users/{user_id}/consents"
        listed = http.get(url, headers=admin).json()["consents"]
        assert [(item["client_id"], item["scope"]) for item in listed] == [
            (client_id, ["openid", "offline_access"])
        ]
        assert http.delete(f"{url}/{client_id}", headers=admin).status_code == 204
        assert http.get(url, headers=admin).json()["consents"] == []
        assert http.delete(f"{url}/{client_id}", headers=admin).status_code == 404
        refreshed = http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=(client_id, secret),
        )
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    asked_again = browser.authorize(Request(client_id, scope="openid"))
    assert asked_again.status_code == 200 and "Allow" in asked_again.text


@pytest.mark.parametrize(
    "action",
    [
        "/oauth2/authorize/sign-in",
        "/oauth2/authorize/second-factor",
        "/oauth2/authorize/consent",
        "/oauth2/authorize/continue",
        "/oauth2/logout/confirm",
    ],
)
def test_every_form_refuses_a_post_without_this_browsers_token(
    idp: IdpServer, browser: Browser, action: str
) -> None:
    client_id, _ = relying_party(idp, first_party=False)
    username, password, _ = person(idp)
    page = browser.authorize(Request(client_id))
    fields = {
        **forms_of(page)[0].fields,
        "username": username,
        "password": password,
        "decision": "allow",
        "otp": "123456",
    }
    before = len(audit_events(idp.provider))
    for csrf in ("forged", ""):
        refused = browser.http.post(action, data={**fields, "csrf": csrf})
        assert refused.status_code == 403, (action, refused.text[:200])
        assert_error_page(refused)
    assert len(audit_events(idp.provider)) == before  # nothing was even tried
    assert browser.session_cookie() is None
