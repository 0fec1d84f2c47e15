"""The provider's login page in a real Chromium: a person logs in and sees their token, with a
code from their authenticator when they have a second factor."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tessera import jose
from tessera.idp.services.audit import Context
from tessera.idp.services.mfa import confirm_enrolment, start_enrolment
from tessera.idp.store.models import User

from ..idp.http.servers import IdpServer

# Flags for a headless Chromium on a machine with no network but loopback.
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)  # fmt: skip

pytestmark = pytest.mark.slow  # a real Chromium per test


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("Chromium and chromedriver are required (Debian: chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def _log_in(browser: webdriver.Chrome, idp: IdpServer, password: str) -> str:
    browser.get(idp.url + "/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    status: str = WebDriverWait(browser, 10).until(
        lambda page: page.find_element(By.ID, "status").text or False
    )
    return status


def test_a_person_logs_in_on_the_login_page(idp: IdpServer, browser: webdriver.Chrome) -> None:
    status = _log_in(browser, idp, idp.admin_password)
    assert status.startswith("Logged in as ")
    token = browser.find_element(By.ID, "token").text
    keys = idp.client().get("/.well-known/jwks.json").json()
    claims = jose.jwt.decode(token, keys, algorithms=["ES256"], issuer=idp.url,
                             audience="demo-api", typ="at+jwt")  # fmt: skip
    assert status == f"Logged in as {claims['sub']} with scope {claims['scope']}"
    assert claims["amr"] == ["pwd"]
    cookies = {cookie["name"]: cookie for cookie in browser.get_cookies()}
    # The refresh cookie is scoped to /auth, so the page at / cannot even see it; the CSRF one
    # is readable by the page's script, as double-submit needs.
    assert "tessera_refresh" not in cookies
    assert cookies["tessera_csrf"]["sameSite"] == "Strict"
    browser.get(idp.url + "/auth/refresh")  # a GET: the refresh cookie is sent under /auth
    refresh = {cookie["name"]: cookie for cookie in browser.get_cookies()}["tessera_refresh"]
    assert refresh["httpOnly"] is True
    assert refresh["sameSite"] == "Strict"
    assert refresh["path"] == "/auth"


def test_a_wrong_password_is_refused_on_the_login_page(
    idp: IdpServer, browser: webdriver.Chrome
) -> None:
    status = _log_in(browser, idp, idp.admin_password + "x")
    assert status == "Refused: invalid username or password"
    assert browser.find_element(By.ID, "token").is_displayed() is False


def test_a_person_with_a_second_factor_logs_in_with_a_code(
    idp: IdpServer, browser: webdriver.Chrome
) -> None:
    username, password = "grace", f"pw-{uuid.uuid4().hex}"
    user_id = idp.add_user(username, password)
    provider = idp.provider
    with provider.database.session() as session:  # enrolled as from their own session
        user = session.get(User, user_id)
        assert user is not None
        enrolment = start_enrolment(
            session, provider.master, user, issuer_name="Tessera", context=Context()
        )
    totp = pyotp.TOTP(enrolment.secret)
    while time.time() % 30 > 25:  # the codes below must stay in their time steps
        time.sleep(0.5)
    now = int(time.time())
    with provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        codes = confirm_enrolment(
            session, provider.master, user, totp.at(now - 30), context=Context(), now=now
        )
        assert codes is not None

    browser.get(idp.url + "/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    code_form = WebDriverWait(browser, 10).until(
        lambda page: (
            page.find_element(By.ID, "code")
            if page.find_element(By.ID, "code").is_displayed()
            else False
        )
    )
    assert browser.find_element(By.ID, "login").is_displayed() is False
    assert browser.find_element(By.ID, "status").text == "enter a code from your authenticator"
    code_form.find_element(By.NAME, "otp").send_keys(totp.at(now))
    code_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    status: str = WebDriverWait(browser, 10).until(
        lambda page: (
            (text := page.find_element(By.ID, "status").text).startswith("Logged in") and text
        )
    )
    assert status.startswith(f"Logged in as {user_id} ")
    token = browser.find_element(By.ID, "token").text
    keys = idp.client().get("/.well-known/jwks.json").json()
    claims = jose.jwt.decode(token, keys, algorithms=["ES256"], issuer=idp.url,
                             audience="demo-api", typ="at+jwt")  # fmt: skip
    assert claims["amr"] == ["pwd", "otp"] and claims["sub"] == user_id
    assert "tessera_csrf" in {cookie["name"] for cookie in browser.get_cookies()}
