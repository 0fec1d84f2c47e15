"""A relying party nobody in the provider wrote: a small Starlette web app that signs its users
in with the provider by the authorization code flow, as the specifications tell a client to —
discovery, PKCE S256, ``state`` bound to the browser, ``nonce``, RFC 9207 ``iss``, the ID token
verified against the JWKS — and signs them out through the end-session endpoint.

Served by uvicorn on 127.0.0.1 (an ephemeral port). Cookies are per host, not per port, so every
app here, and the provider, share one cookie jar in a browser: each app names its cookie after
itself.

What the app received (the callback's parameters, the token answer, the verified claims) is kept
for the tests to check; its pages show who is signed in (``#status``, ``#sub``, ``#username``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tessera import jose

from ..guard.servers import UvicornThread

SCOPE = "openid profile email demo:read"


@dataclass
class Pending:
    """An authorization request on its way: what the callback must find again."""

    browser: str
    verifier: str
    nonce: str


@dataclass
class SignedIn:
    """A browser signed in to the app: the verified ID token, its claims, and UserInfo."""

    id_token: str
    claims: dict[str, Any]
    userinfo: dict[str, Any]
    tokens: dict[str, Any]


@dataclass
class Received:
    """Everything the app was sent, in order."""

    callbacks: list[dict[str, str]] = field(default_factory=list)
    sign_ins: list[SignedIn] = field(default_factory=list)
    signed_out: list[dict[str, str]] = field(default_factory=list)


class RelyingParty:
    """A web app of ``name`` at ``http://127.0.0.1:<port>``: ``/`` (who is signed in),
    ``/login`` (``?acr_values=mfa``, ``?prompt=…``: passed on), ``/callback``, ``/logout``
    (``?hint=no``: without ``id_token_hint``), and ``/signed-out`` (the post-logout redirect
    URI).

    Start it, register it as a client (:attr:`redirect_uri`, :attr:`post_logout_redirect_uri`),
    then set :attr:`client_id` and :attr:`secret`.
    """

    def __init__(self, issuer: str, name: str, scope: str = SCOPE) -> None:
        self.issuer = issuer
        self.name = name
        self.scope = scope
        self.client_id = ""
        self.secret: str | None = None
        self.cookie = f"rp_{name.lower()}"
        self.received = Received()
        self._pending: dict[str, Pending] = {}
        self._sessions: dict[str, SignedIn] = {}
        self._logouts: set[str] = set()
        self._metadata: dict[str, Any] | None = None
        app = Starlette(
            routes=[
                Route("/", self._home),
                Route("/login", self._login),
                Route("/callback", self._callback),
                Route("/logout", self._logout),
                Route("/signed-out", self._signed_out),
            ]
        )
        self._server = UvicornThread(app)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> RelyingParty:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def redirect_uri(self) -> str:
        return self.url + "/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.url + "/signed-out"

    def metadata(self) -> dict[str, Any]:
        """The provider's OpenID Connect discovery document (fetched once)."""
        if self._metadata is None:
            document = httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=10)
            document.raise_for_status()
            self._metadata = document.json()
            assert self._metadata["issuer"] == self.issuer
        return self._metadata

    # ------------------------------------------------------------------ pages

    def _browser(self, request: Request) -> str | None:
        return request.cookies.get(self.cookie)

    def _page(self, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><title>{escape(self.name)}</title><h1>{escape(self.name)}</h1>" + body,
            status_code=status,
        )

    def _home(self, request: Request) -> Response:
        browser = self._browser(request)
        signed_in = self._sessions.get(browser) if browser is not None else None
        if signed_in is None:
            return self._page(
                '<p id="status">Not signed in</p><a id="login" href="/login">Sign in</a>'
            )
        username = signed_in.userinfo.get("preferred_username", "")
        return self._page(
            '<p id="status">Signed in</p>'
            f'<p>sub: <span id="sub">{escape(signed_in.claims["sub"])}</span></p>'
            f'<p>username: <span id="username">{escape(username)}</span></p>'
            '<a id="logout" href="/logout">Sign out</a> '
            '<a id="logout-without-hint" href="/logout?hint=no">Sign out (no hint)</a>'
        )

    def _login(self, request: Request) -> Response:
        browser = self._browser(request) or secrets.token_urlsafe(16)
        state = secrets.token_urlsafe(16)
        pending = Pending(browser, secrets.token_urlsafe(48), secrets.token_urlsafe(16))
        self._pending[state] = pending
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
        for name in ("acr_values", "prompt"):  # what the app asks of this sign-in, if anything
            if name in request.query_params:
                params[name] = request.query_params[name]
        target = self.metadata()["authorization_endpoint"] + "?" + urlencode(params)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(self.cookie, browser, httponly=True, samesite="lax")
        return response

    def _callback(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.received.callbacks.append(params)
        pending = self._pending.pop(params.get("state", ""), None)
        if pending is None or pending.browser != self._browser(request):
            return self._page('<p id="error">state does not match</p>', 400)
        if params.get("iss") != self.issuer:  # RFC 9207: the answer names who sent it
            return self._page('<p id="error">iss does not match</p>', 400)
        if "error" in params:
            return self._page(f'<p id="error">{escape(params["error"])}</p>', 400)
        metadata = self.metadata()
        with httpx.Client(timeout=10) as http:
            answer = http.post(
                metadata["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": params["code"],
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": pending.verifier,
                },
                auth=(self.client_id, self.secret or ""),
            )
            answer.raise_for_status()
            tokens: dict[str, Any] = answer.json()
            keys = http.get(metadata["jwks_uri"]).json()
            verifier = jose.Verifier(
                keys,
                algorithms=metadata["id_token_signing_alg_values_supported"],
                issuer=self.issuer,
                audience=self.client_id,
                require=("sub", "iat", "exp"),
            )
            claims = verifier.verify(tokens["id_token"])
            if claims.get("nonce") != pending.nonce:
                return self._page('<p id="error">nonce does not match</p>', 400)
            userinfo = http.get(
                metadata["userinfo_endpoint"],
                headers={"authorization": f"Bearer {tokens['access_token']}"},
            )
            userinfo.raise_for_status()
        signed_in = SignedIn(tokens["id_token"], claims, userinfo.json(), tokens)
        self._sessions[pending.browser] = signed_in
        self.received.sign_ins.append(signed_in)
        return RedirectResponse("/", status_code=303)

    def _logout(self, request: Request) -> Response:
        browser = self._browser(request)
        signed_in = self._sessions.pop(browser, None) if browser is not None else None
        state = secrets.token_urlsafe(16)
        self._logouts.add(state)
        params = {"post_logout_redirect_uri": self.post_logout_redirect_uri, "state": state}
        if signed_in is not None and request.query_params.get("hint") != "no":
            params["id_token_hint"] = signed_in.id_token
        else:
            params["client_id"] = self.client_id
        target = self.metadata()["end_session_endpoint"] + "?" + urlencode(params)
        return RedirectResponse(target, status_code=303)

    def _signed_out(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.received.signed_out.append(params)
        if params.get("state") not in self._logouts:
            return self._page('<p id="error">state does not match</p>', 400)
        self._logouts.discard(params["state"])
        return self._page('<p id="status">Signed out</p><a id="login" href="/login">Sign in</a>')
