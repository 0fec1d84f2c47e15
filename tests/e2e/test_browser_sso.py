"""Single sign-on in a real Chromium: real web apps (``relying_party.py``, each on its own port)
send a person to the provider's OpenID Connect pages — sign-in, second factor, consent, logout
— and get them back signed in (or out). The browser's console must show no Content Security
Policy violation on the way."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from ..idp.http.browsing import enrol_totp, person, relying_party
from ..idp.http.servers import CHEAP_ARGON2, IdpServer, serving
from .relying_party import RelyingParty
from .test_browser_login import FLAGS

pytestmark = pytest.mark.slow  # a real Chromium

WAIT = 10


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    """One provider for the module (cheap argon2: these tests are not about hashing), with the
    cookies of `make run`: Secure on http://127.0.0.1, which a browser keeps for loopback."""
    directory = tmp_path_factory.mktemp("sso")
    with serving("sqlite", directory, cookie_secure=True, **CHEAP_ARGON2) as server:
        yield server


def _app(idp: IdpServer, name: str, *, first_party: bool = True) -> Iterator[RelyingParty]:
    app = RelyingParty(idp.url, name).start()
    try:
        app.client_id, app.secret = relying_party(
            idp,
            name=name,
            first_party=first_party,
            redirect_uris=(app.redirect_uri,),
            post_logout_redirect_uris=(app.post_logout_redirect_uri,),
        )
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def wiki(idp: IdpServer) -> Iterator[RelyingParty]:
    """App A: first party."""
    yield from _app(idp, "Wiki")


@pytest.fixture(scope="module")
def chat(idp: IdpServer) -> Iterator[RelyingParty]:
    """App B: first party, another port."""
    yield from _app(idp, "Chat")


@pytest.fixture(scope="module")
def partner(idp: IdpServer) -> Iterator[RelyingParty]:
    """A third-party app: asks for consent."""
    yield from _app(idp, "Partner", first_party=False)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("Chromium and chromedriver are required (Debian: chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # The console (CSP violations) and the network events (which documents were shown).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    """The module's Chromium as a new person's: no cookies, logs read from here on; at the
    end, the console must show no CSP violation."""
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium.get("about:blank")
    _log(chromium, "browser")
    _log(chromium, "performance")
    yield chromium
    violations = csp_violations(chromium)
    assert not violations, violations


# ---------------------------------------------------------------------- what the browser saw


def _log(browser: webdriver.Chrome, kind: str) -> list[dict[str, Any]] | None:
    """The entries of a chromedriver log since the last read; ``None`` if this chromedriver
    does not keep them."""
    try:
        entries: list[dict[str, Any]] = browser.get_log(kind)
    except (WebDriverException, AttributeError):
        return None
    return entries


def csp_violations(browser: webdriver.Chrome) -> list[str]:
    """Console messages about a Content Security Policy violation (none if there is no log)."""
    entries = _log(browser, "browser") or []
    return [entry["message"] for entry in entries if "Content Security Policy" in entry["message"]]


def documents(browser: webdriver.Chrome) -> list[tuple[str, int]] | None:
    """The documents the browser received since the last read (URL, status; redirects are not
    documents); ``None`` if this chromedriver keeps no performance log."""
    entries = _log(browser, "performance")
    if entries is None:
        return None
    shown = []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.responseReceived" and params["type"] == "Document":
            shown.append((params["response"]["url"], params["response"]["status"]))
    return shown


def waiting(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    """A wait that reads the page as it changes: an element of the page before is stale, and
    Chromium may answer a read during the navigation with an inspector error ("Node with given
    id does not belong to the document"). Past ``WAIT`` the wait fails with a timeout."""
    return WebDriverWait(
        browser,
        WAIT,
        ignored_exceptions=(
            NoSuchElementException,
            StaleElementReferenceException,
            WebDriverException,
        ),
    )


def wait_for(browser: webdriver.Chrome, css: str) -> WebElement:
    """The element ``css`` once the page that has it is there."""
    found: WebElement = waiting(browser).until(
        lambda page: (
            page.find_elements(By.CSS_SELECTOR, css) and page.find_element(By.CSS_SELECTOR, css)
        )
    )
    return found


def at_app(browser: webdriver.Chrome, app: RelyingParty, path: str = "/") -> str:
    """Wait until the browser shows ``app``'s ``path`` (any query); the page's ``#status``."""
    waiting(browser).until(lambda page: page.current_url.split("?")[0] == app.url + path)
    return wait_for(browser, "#status").text


def sign_in_page(browser: webdriver.Chrome, idp: IdpServer) -> None:
    """The browser shows the provider's sign-in page."""
    wait_for(browser, "input#password")
    assert browser.current_url.startswith(idp.url + "/oauth2/authorize")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"


def fill_sign_in(browser: webdriver.Chrome, username: str, password: str) -> None:
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def sign_in(
    browser: webdriver.Chrome, idp: IdpServer, app: RelyingParty, who: tuple[str, str]
) -> None:
    """From the app's home, through the provider's sign-in page, back at the app signed in."""
    browser.get(app.url + "/")
    wait_for(browser, "#login").click()
    sign_in_page(browser, idp)
    fill_sign_in(browser, *who)
    assert at_app(browser, app) == "Signed in"


def provider_cookie(browser: webdriver.Chrome) -> dict[str, Any] | None:
    cookies = {cookie["name"]: cookie for cookie in browser.get_cookies()}
    return cookies.get("tessera_session")


# ---------------------------------------------------------------------- the scenarios


def test_a_person_signs_in_at_the_provider_and_is_back_at_the_app(
    idp: IdpServer, wiki: RelyingParty, browser: webdriver.Chrome
) -> None:
    username, password, user_id = person(idp)
    browser.get(wiki.url + "/")
    assert wait_for(browser, "#status").text == "Not signed in"
    browser.find_element(By.ID, "login").click()

    sign_in_page(browser, idp)
    assert browser.title == "Sign in · Default"
    tenant = browser.find_element(By.CSS_SELECTOR, "p.tenant")
    assert tenant.get_attribute("textContent") == "Default"
    assert tenant.text == "DEFAULT"  # the provider's style sheet applies: CSP let it in
    assert "continue to Wiki" in browser.find_element(By.TAG_NAME, "main").text
    field = browser.find_element(By.ID, "username")
    assert field.get_attribute("autocomplete") == "username"
    assert field.get_attribute("autocapitalize") == "none"
    assert browser.find_element(By.ID, "password").get_attribute("autocomplete") == (
        "current-password"
    )
    assert browser.switch_to.active_element == field  # autofocus
    fill_sign_in(browser, username, password)

    assert at_app(browser, wiki) == "Signed in"
    assert browser.find_element(By.ID, "sub").text == user_id
    assert browser.find_element(By.ID, "username").text == username
    # What the app was sent: a code for its state, from this issuer (RFC 9207); its ID token
    # (verified by the app, nonce included) is the person's, signed in by password.
    callback = wiki.received.callbacks[-1]
    assert set(callback) == {"code", "state", "iss"} and callback["iss"] == idp.url
    signed_in = wiki.received.sign_ins[-1]
    assert signed_in.claims["sub"] == user_id and signed_in.claims["aud"] == wiki.client_id
    assert signed_in.claims["amr"] == ["pwd"] and "sid" in signed_in.claims
    assert signed_in.tokens["scope"] == "openid profile email demo:read"
    assert signed_in.userinfo == {
        "sub": user_id,
        "preferred_username": username,
        "updated_at": signed_in.userinfo["updated_at"],
    }
    session = provider_cookie(browser)
    assert session is not None
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    assert session["secure"] is True and session["path"] == "/"


def test_a_person_with_an_authenticator_gives_its_code(
    idp: IdpServer, wiki: RelyingParty, browser: webdriver.Chrome
) -> None:
    username, password, user_id = person(idp)
    totp = enrol_totp(idp, user_id)
    browser.get(wiki.url + "/login")
    sign_in_page(browser, idp)
    fill_sign_in(browser, username, password)

    code = wait_for(browser, "input#otp")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Second factor"
    assert browser.title == "Second factor · Default"
    assert code.get_attribute("autocomplete") == "one-time-code"
    assert code.get_attribute("inputmode") == "numeric"
    # The recovery code is there too, behind its <details>.
    assert browser.find_element(By.ID, "recovery_code").is_displayed() is False
    code.send_keys(totp.now())
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    assert at_app(browser, wiki) == "Signed in"
    assert browser.find_element(By.ID, "sub").text == user_id
    assert wiki.received.sign_ins[-1].claims["amr"] == ["pwd", "otp"]


def test_an_app_that_asks_for_a_second_factor_gets_one_enrolled(
    idp: IdpServer, wiki: RelyingParty, browser: webdriver.Chrome
) -> None:
    username, password, user_id = person(idp)
    browser.get(wiki.url + "/login?acr_values=mfa")
    sign_in_page(browser, idp)
    fill_sign_in(browser, username, password)

    code = wait_for(browser, "input#otp")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Add an authenticator"
    qr = browser.find_element(By.CSS_SELECTOR, "img.qr")  # a data: URI, which CSP must allow
    assert qr.get_attribute("src").startswith("data:image/svg+xml;base64,")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", qr)
    secret = browser.find_element(By.CSS_SELECTOR, "code.secret").text
    code.send_keys(pyotp.TOTP(secret).now())
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    wait_for(browser, "ul.codes")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Your recovery codes"
    codes = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "ul.codes li")]
    assert len(codes) >= 8 and len(set(codes)) == len(codes)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # continue to Wiki
    assert at_app(browser, wiki) == "Signed in"
    claims = wiki.received.sign_ins[-1].claims
    assert claims["sub"] == user_id and claims["amr"] == ["pwd", "otp"] and claims["acr"] == "mfa"

    # Signed out, then in again with a recovery code instead of the authenticator.
    browser.find_element(By.ID, "logout").click()
    assert at_app(browser, wiki, "/signed-out") == "Signed out"
    browser.get(wiki.url + "/login")
    sign_in_page(browser, idp)
    fill_sign_in(browser, username, password)
    wait_for(browser, "details summary").click()
    recovery = browser.find_element(By.ID, "recovery_code")
    assert recovery.is_displayed()
    recovery.send_keys(codes[0])
    recovery.submit()
    assert at_app(browser, wiki) == "Signed in"
    assert wiki.received.sign_ins[-1].claims["sub"] == user_id


def test_a_third_party_app_asks_for_consent(
    idp: IdpServer, partner: RelyingParty, browser: webdriver.Chrome
) -> None:
    username, password, user_id = person(idp)
    sign_in_attempts = len(partner.received.callbacks)
    browser.get(partner.url + "/login")
    sign_in_page(browser, idp)
    fill_sign_in(browser, username, password)

    allow = wait_for(browser, "button[value=allow]")
    assert browser.title == "Allow access · Default"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Allow Partner access?"
    assert f"Signed in as {username}" in browser.find_element(By.TAG_NAME, "main").text
    lines = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "ul.scopes li")]
    assert lines == [
        "Know who you are (an identifier for your account)",
        "See your name and username",
        "See your email address",
        "Use “demo:read” in your name",
    ]
    assert len(partner.received.callbacks) == sign_in_attempts  # nothing sent before consent
    allow.click()

    assert at_app(browser, partner) == "Signed in"
    assert browser.find_element(By.ID, "sub").text == user_id
    assert partner.received.sign_ins[-1].claims["sub"] == user_id
    # Remembered: the next sign-in to the app needs no page at all.
    browser.get(partner.url + "/login")
    assert at_app(browser, partner) == "Signed in"


def test_a_second_app_signs_in_without_a_page_of_the_provider(
    idp: IdpServer, wiki: RelyingParty, chat: RelyingParty, browser: webdriver.Chrome
) -> None:
    username, password, user_id = person(idp)
    sign_in(browser, idp, wiki, (username, password))
    first_sid = wiki.received.sign_ins[-1].claims["sid"]
    documents(browser)  # what was shown so far

    browser.get(chat.url + "/")
    assert wait_for(browser, "#status").text == "Not signed in"
    browser.find_element(By.ID, "login").click()
    assert at_app(browser, chat) == "Signed in"
    assert browser.find_element(By.ID, "sub").text == user_id
    assert browser.find_element(By.ID, "username").text == username
    shown = documents(browser)
    if shown is not None:  # the provider only redirected: not one of its pages was shown
        assert [url for url, _ in shown if url.startswith(idp.url)] == [], shown
        assert [url for url, _ in shown] == [chat.url + "/", chat.url + "/"]
    claims = chat.received.sign_ins[-1].claims
    assert claims["sub"] == user_id and claims["sid"] == first_sid  # the same provider session
    assert claims["aud"] == chat.client_id


def test_the_apps_logout_ends_the_provider_session(
    idp: IdpServer, wiki: RelyingParty, chat: RelyingParty, browser: webdriver.Chrome
) -> None:
    username, password, _ = person(idp)
    sign_in(browser, idp, wiki, (username, password))
    assert provider_cookie(browser) is not None
    documents(browser)  # what was shown so far

    browser.find_element(By.ID, "logout").click()  # the end-session endpoint, with the hint
    assert at_app(browser, wiki, "/signed-out") == "Signed out"
    shown = documents(browser)
    if shown is not None:  # the ID token of the session was proof enough: no page to confirm
        assert [url for url, _ in shown] == [browser.current_url], shown
    arrived = wiki.received.signed_out[-1]
    assert set(arrived) == {"state"}  # the state the app sent, back
    assert provider_cookie(browser) is None

    # The provider session is over: neither app signs in without the sign-in page.
    for app in (wiki, chat):
        browser.get(app.url + "/login")
        sign_in_page(browser, idp)


def test_a_logout_without_a_hint_is_confirmed_first(
    idp: IdpServer, wiki: RelyingParty, browser: webdriver.Chrome
) -> None:
    username, password, _ = person(idp)
    sign_in(browser, idp, wiki, (username, password))

    browser.find_element(By.ID, "logout-without-hint").click()
    sign_out = wait_for(browser, "button[value=logout]")
    assert browser.current_url.startswith(idp.url + "/oauth2/logout?")
    assert browser.title == "Sign out · Default"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign out?"
    assert "Wiki asks to sign you out of Default" in browser.find_element(By.TAG_NAME, "main").text
    assert provider_cookie(browser) is not None  # nothing happened before the person confirms
    sign_out.click()

    assert at_app(browser, wiki, "/signed-out") == "Signed out"
    assert provider_cookie(browser) is None
    browser.get(wiki.url + "/login")
    sign_in_page(browser, idp)

    # Signed in again, a bare link to the end-session endpoint: its page, "Sign out", done.
    fill_sign_in(browser, username, password)
    assert at_app(browser, wiki) == "Signed in"
    browser.get(idp.url + "/oauth2/logout")
    wait_for(browser, "button[value=logout]").click()
    heading = waiting(browser).until(
        lambda page: (text := page.find_element(By.TAG_NAME, "h1").text) != "Sign out?" and text
    )
    assert heading == "You are signed out"
    assert browser.current_url == idp.url + "/oauth2/logout/confirm"
    assert provider_cookie(browser) is None


def test_the_console_check_sees_a_violation(
    idp: IdpServer, wiki: RelyingParty, browser: webdriver.Chrome
) -> None:
    """The CSP assertion above is not vacuous: an inline script on a provider page is refused,
    and the console says so."""
    assert _log(browser, "browser") is not None, "this chromedriver keeps no browser log"
    browser.get(wiki.url + "/login")
    wait_for(browser, "input#password")
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        "document.body.appendChild(s);"
    )
    assert browser.execute_script("return window.ran === undefined") is True
    violations = waiting(browser).until(lambda page: csp_violations(page) or False)
    assert "script-src" in violations[0]
