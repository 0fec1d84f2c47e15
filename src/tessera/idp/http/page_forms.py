"""The anti-forgery token of the pages' forms (the signed double-submit cookie pattern): the
browser holds a random cookie; each form carries its keyed hash. A page of another site can
neither read the cookie nor compute the hash, so it cannot post a form here in the person's
name — no login CSRF, no consent CSRF.

>>> form_cookie_name("https://id.example"), form_cookie_name("http://127.0.0.1:8000")
('__Host-tessera_form', 'tessera_form')
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from ..provider import Provider
from ..services.browser_sessions import MAX_COOKIE_LENGTH, cookie_name
from ..services.secrets import new_secret, same

PURPOSE = "page-form"
FIELD = "csrf"


def form_cookie_name(issuer: str) -> str:
    """``__Host-`` prefixed when the issuer is https (no subdomain can plant one)."""
    return "__Host-tessera_form" if issuer.startswith("https://") else "tessera_form"


@dataclass(frozen=True, slots=True)
class Browser:
    """What the provider reads of a browser: its session cookie and form cookie."""

    session_cookie: str | None
    form_cookie: str | None

    @classmethod
    def of(cls, request: Request, provider: Provider) -> Browser:
        """The browser that sent ``request``."""
        issuer = provider.settings.issuer
        return cls(
            request.cookies.get(cookie_name(issuer)),
            request.cookies.get(form_cookie_name(issuer)),
        )


@dataclass(frozen=True, slots=True)
class FormToken:
    """The token a page's forms carry, and the cookie to set when the browser had none."""

    value: str
    new_cookie: str | None


def form_token(provider: Provider, browser: Browser) -> FormToken:
    """The token of the browser's form cookie (a new cookie when it has none)."""
    cookie = browser.form_cookie
    if cookie and len(cookie) <= MAX_COOKIE_LENGTH:
        return FormToken(provider.master.keyed_hash(PURPOSE, cookie), None)
    cookie = new_secret()
    return FormToken(provider.master.keyed_hash(PURPOSE, cookie), cookie)


def form_is_genuine(provider: Provider, browser: Browser, sent: str | None) -> bool:
    """Whether a posted form's token is the one of this browser's form cookie."""
    cookie = browser.form_cookie
    if not cookie or not sent or len(cookie) > MAX_COOKIE_LENGTH:
        return False
    return same(provider.master.keyed_hash(PURPOSE, cookie), sent)


def secure_cookies(provider: Provider) -> bool:
    """Cookies are Secure unless turned off for plain-http development (never under https)."""
    return provider.settings.cookie_secure or provider.settings.issuer.startswith("https://")


def set_form_cookie(response: Response, provider: Provider, token: FormToken) -> Response:
    """``response`` setting the form cookie, if ``token`` made a new one."""
    if token.new_cookie is not None:
        response.set_cookie(
            form_cookie_name(provider.settings.issuer),
            token.new_cookie,
            path="/",
            secure=secure_cookies(provider),
            httponly=True,
            samesite="lax",
        )
    return response


def set_session_cookie(response: Response, provider: Provider, cookie: str) -> Response:
    """``response`` setting the provider session cookie (a new value at every sign-in)."""
    response.set_cookie(
        cookie_name(provider.settings.issuer),
        cookie,
        max_age=provider.settings.session_ttl,
        path="/",
        secure=secure_cookies(provider),
        httponly=True,
        samesite="lax",
    )
    return response
