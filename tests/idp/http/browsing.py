"""A browser without a screen, for the provider's pages: httpx keeps the cookies, the standard
library's HTML parser reads the forms, and a relying party's authorization request is made the
way a real one makes it (PKCE S256, state, nonce)."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tessera.idp.services import mfa
from tessera.idp.services.audit import Context
from tessera.idp.services.clients import create_client
from tessera.idp.store.models import User

from .servers import AUDIENCE, IdpServer

REDIRECT = "https://app.example/callback"


@dataclass
class Form:
    """One ``<form>`` of a page: where it posts and its fields (hidden ones filled in)."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get")))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms and "name" in values:
            self.forms[-1].buttons.append((values["name"], values.get("value", "")))


def forms_of(page: httpx.Response) -> list[Form]:
    """The forms of an HTML page."""
    parser = _Forms()
    parser.feed(page.text)
    return parser.forms


def query_of(response: httpx.Response) -> dict[str, str]:
    """The parameters of a 303's Location (one value each)."""
    assert response.status_code == 303, (response.status_code, response.text[:500])
    return {
        name: values[0] for name, values in parse_qs(urlsplit(location(response)).query).items()
    }


def location(response: httpx.Response) -> str:
    return response.headers["location"]


@dataclass
class Request:
    """An authorization request as a relying party makes it, with what it must remember."""

    client_id: str
    redirect_uri: str = REDIRECT
    scope: str = "openid profile email"
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    extra: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": create_s256_code_challenge(self.verifier),
            "code_challenge_method": "S256",
        }
        params.update(self.extra)
        return {name: value for name, value in params.items() if value is not None}

    def url(self) -> str:
        return "/oauth2/authorize?" + urlencode(self.params())


class Browser:
    """A person's browser at the provider: cookies kept, redirects not followed."""

    def __init__(self, idp: IdpServer) -> None:
        self.idp = idp
        self.http = idp.client()

    def close(self) -> None:
        self.http.close()

    def authorize(self, request: Request) -> httpx.Response:
        return self.http.get(request.url())

    def submit(self, page: httpx.Response, index: int = 0, **fields: str) -> httpx.Response:
        """Fill in and post a form of ``page`` (its hidden fields as the page made them)."""
        assert page.headers["content-type"].startswith("text/html"), page.text[:300]
        form = forms_of(page)[index]
        values = {**form.fields, **fields}
        return self.http.post(form.action, data=values)

    def sign_in(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        return self.submit(page, username=username, password=password)

    def session_cookie(self) -> str | None:
        return self.http.cookies.get("tessera_session")


def relying_party(
    idp: IdpServer,
    *,
    first_party: bool = True,
    tenant_id: str = "default",
    redirect_uris: tuple[str, ...] = (REDIRECT,),
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
    name: str = "Wiki",
    confidential: bool = True,
    post_logout_redirect_uris: tuple[str, ...] = (),
    backchannel_logout_uri: str | None = None,
) -> tuple[str, str | None]:
    """A relying party of ``tenant_id`` allowed the demo scopes: (client id, secret)."""
    with idp.provider.database.session() as session:
        made = create_client(
            session,
            idp.provider.master,
            tenant_id=tenant_id,
            name=name,
            grant_types=grant_types,
            audience=(AUDIENCE,),
            allowed_scopes=("demo:read",),
            redirect_uris=redirect_uris,
            first_party=first_party,
            confidential=confidential,
            post_logout_redirect_uris=post_logout_redirect_uris,
            backchannel_logout_uri=backchannel_logout_uri,
        )
    return made.client.id, made.secret


def person(idp: IdpServer, tenant_id: str = "default", **options: Any) -> tuple[str, str, str]:
    """A new user: (username, password, id)."""
    username = f"person-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    return username, password, idp.add_user(username, password, tenant_id, **options)


def enrol_totp(idp: IdpServer, user_id: str) -> pyotp.TOTP:
    """Give a user a TOTP factor (confirmed at a past moment, so that now's code is unused)."""
    moment = int(time.time()) - 3600
    with idp.provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        enrolment = mfa.start_enrolment(
            session, idp.provider.master, user, issuer_name="t", context=Context(), now=moment
        )
        totp = pyotp.TOTP(enrolment.secret)
        codes = mfa.confirm_enrolment(
            session, idp.provider.master, user, totp.at(moment), context=Context(), now=moment
        )
        assert codes is not None
    return totp


def redeem(
    idp: IdpServer, request: Request, code: str, client_id: str, secret: str | None
) -> httpx.Response:
    """The client's token request for ``code``."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
    }
    with idp.client() as http:
        if secret is None:
            return http.post("/oauth2/token", data={**form, "client_id": client_id})
        return http.post("/oauth2/token", data=form, auth=(client_id, secret))
