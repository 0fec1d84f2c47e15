"""What every page request reads and writes: its parameters (one value each), the browser's
cookies, and the anti-forgery token of the pages' forms — the signed double-submit cookie
pattern: the browser holds a random cookie; each form carries its keyed hash. A page of another
site can neither read the cookie nor compute the hash, so it cannot post a form here in the
person's name — no login CSRF, no consent CSRF, no logout CSRF.

>>> form_cookie_name("https://id.example"), form_cookie_name("http://127.0.0.1:8000")
('__Host-tessera_form', 'tessera_form')
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.responses import Response

from ..provider import Provider
from ..services.audit import Context
from ..services.browser_sessions import MAX_COOKIE_LENGTH, cookie_name
from ..services.secrets import new_secret, same
from .pages import page
from .requests import context_of, provider_of

PURPOSE = "page-form"
FIELD = "csrf"
MAX_FORM_FIELD = 4096


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


@dataclass(frozen=True, slots=True)
class Exchange:
    """One page request: who asks, from which browser, with which form token, when."""

    provider: Provider
    browser: Browser
    token: FormToken
    context: Context
    now: int


def exchange_of(request: Request) -> Exchange:
    """The page request ``request`` is, now."""
    provider = provider_of(request)
    browser = Browser.of(request, provider)
    return Exchange(
        provider, browser, form_token(provider, browser), context_of(request), int(time.time())
    )


async def form_fields(request: Request, exchange: Exchange) -> dict[str, str] | Response:
    """A page's posted form, once its anti-forgery token is this browser's; else the error
    page to answer with (nothing of the form is acted on)."""
    if not is_form(request):
        return error_page("the request must be a form", 415)
    fields, repeated = parameters((await request.body()).decode("utf-8", "replace"))
    if repeated or any(len(value) > MAX_FORM_FIELD for value in fields.values()):
        return error_page("this form was not sent as the page made it")
    if not form_is_genuine(exchange.provider, exchange.browser, fields.get(FIELD)):
        return error_page(
            "this form did not come from this page (or your browser refuses cookies)", 403
        )
    return fields


def error_page(message: str, status: int = 400, tenant_name: str = "Tessera") -> Response:
    """The provider's own error page: for what cannot be answered anywhere else."""
    return page("error.html", status=status, tenant_name=tenant_name, message=message)


def origin_of(uri: str) -> str:
    """The origin a form may post or redirect to, for the CSP's ``form-action``.

    >>> origin_of("https://app.example:8443/cb?x=1"), origin_of("com.example.app:/cb")
    ('https://app.example:8443', 'com.example.app:')
    """
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return f"{parts.scheme}:"


def is_form(request: Request) -> bool:
    """Whether ``request`` has a urlencoded body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/x-www-form-urlencoded"


def parameters(text: str) -> tuple[dict[str, str], frozenset[str]]:
    """One value per name (blank values are absent), and the names sent more than once.
    Names or values with NUL are dropped: no parameter of ours has one."""
    values: dict[str, str] = {}
    seen: set[str] = set()
    repeated: set[str] = set()
    for name, value in parse_qsl(text, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            continue
        if name in seen:
            repeated.add(name)
        seen.add(name)
        if value != "":
            values[name] = value
    return values, frozenset(repeated)


def clear_session_cookie(response: Response, provider: Provider) -> Response:
    """``response`` removing the provider session cookie (with the attributes it was set with:
    a ``__Host-`` cookie is only replaced by one that is Secure too)."""
    response.delete_cookie(
        cookie_name(provider.settings.issuer),
        path="/",
        secure=secure_cookies(provider),
        httponly=True,
        samesite="lax",
    )
    return response
