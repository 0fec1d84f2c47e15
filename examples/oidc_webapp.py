"""Sign in with Tessera: a web app that is an OpenID Connect relying party (FastAPI + Authlib).

Against `make run`, create its client once, then run it (examples/README.md has both commands):

    TESSERA_CLIENT_ID=... TESSERA_CLIENT_SECRET=... .venv/bin/python examples/oidc_webapp.py

and open http://127.0.0.1:5000/. The app learns everything about the provider from discovery
(TESSERA_ISSUER, default http://127.0.0.1:8000): "Sign in with Tessera" is the authorization code
flow with PKCE S256, state and nonce (Authlib checks the ID token's signature, issuer, audience
and nonce); the home page shows the ID token's claims and UserInfo; "Call the API" sends the
access token to /api/profile, a route of this same app guarded by tessera.guard (keys from the
issuer's JWKS); "Sign out" goes through the provider's end-session endpoint (id_token_hint,
post_logout_redirect_uri), which ends the provider session too.

The tokens stay on the server (in memory here; a real app keeps them in its own store): the
browser only holds a signed session cookie naming them.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from html import escape
from typing import Annotated, Any

import httpx
import uvicorn
from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import FastAPI, Request, Security
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from tessera.guard import AsyncRemoteJwks, Guard, Principal
from tessera.guard.fastapi import FastAPIGuard

ISSUER = os.environ.get("TESSERA_ISSUER", "http://127.0.0.1:8000").rstrip("/")
CLIENT_ID = os.environ.get("TESSERA_CLIENT_ID", "")
CLIENT_SECRET = os.environ.get("TESSERA_CLIENT_SECRET", "")
PORT = int(os.environ.get("PORT", "5000"))
# Where the browser reaches this app: the redirect URIs are built from it (the provider compares
# them exactly; for a loopback address such as this one, any port is allowed).
APP_URL = os.environ.get("APP_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
# The OpenID scopes, and demo:read: the API scope `make run`'s demo user (admin) holds.
SCOPE = os.environ.get("TESSERA_SCOPE", "openid profile email demo:read")
# A client created without --audience gets access tokens for itself: its own client id.
AUDIENCE = os.environ.get("TESSERA_AUDIENCE", CLIENT_ID)
API_URL = os.environ.get("API_URL", f"{APP_URL}/api/profile")

oauth = OAuth()
oauth.register(
    "tessera",
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"},
)
guard = Guard(
    keys=AsyncRemoteJwks.discover(ISSUER),
    issuer=ISSUER,
    audience=AUDIENCE,
    algorithms=["ES256"],
    typ="at+jwt",  # RFC 9068 access tokens: an ID token is no key to the API
)
app = FastAPI(title="Sign in with Tessera")
app.add_middleware(
    SessionMiddleware,
    secret_key=os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32),
    session_cookie="example_session",  # cookies are per host: not the provider's names
    same_site="lax",  # sent on the provider's redirect back to /callback
    https_only=APP_URL.startswith("https://"),
)
auth = FastAPIGuard(guard, app=app)
SIGNED_IN: dict[str, dict[str, Any]] = {}  # session key → tokens, ID token claims, UserInfo


def page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>Example app</title>'
        f"<h1>Example app</h1>{body}</html>",
        status_code=status,
    )


def shown(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, sort_keys=True))}</pre>"


def signed_in(request: Request) -> dict[str, Any] | None:
    return SIGNED_IN.get(request.session.get("user", ""))


@app.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """Who is signed in; or, back from the provider's logout, that nobody is."""
    notice = ""
    if "state" in request.query_params:  # the post-logout redirect: its state must be ours
        try:
            await oauth.tessera.validate_logout_response(request)
            notice = '<p id="signed-out">You are signed out (of the provider too).</p>'
        except OAuthError as error:
            return page(f'<p id="error">{escape(error.description or error.error)}</p>', 400)
    user = signed_in(request)
    if user is None:
        return page(notice + '<p><a id="sign-in" href="/login">Sign in with Tessera</a></p>')
    return page(
        f'<p id="welcome">Signed in as {escape(user["userinfo"].get("preferred_username", ""))}'
        f'</p><h2>ID token</h2><div id="claims">{shown(user["claims"])}</div>'
        f'<h2>UserInfo</h2><div id="userinfo">{shown(user["userinfo"])}</div>'
        '<p><a id="call-api" href="/call-api">Call the API</a> · '
        '<a id="sign-out" href="/logout">Sign out</a></p>'
    )


@app.get("/login")
async def login(request: Request) -> Response:
    """To the provider's authorization endpoint (code, PKCE S256, state, nonce)."""
    response: Response = await oauth.tessera.authorize_redirect(request, f"{APP_URL}/callback")
    return response


@app.get("/callback")
async def callback(request: Request) -> Response:
    """The code back from the provider: redeemed, the ID token verified, UserInfo fetched."""
    if request.query_params.get("iss") != ISSUER:  # RFC 9207: the answer names its sender
        return page('<p id="error">the answer is not from the expected issuer</p>', 400)
    try:
        token = await oauth.tessera.authorize_access_token(request)
        userinfo = await oauth.tessera.userinfo(token=token)
    except OAuthError as error:  # e.g. access_denied: the person did not allow access
        return page(f'<p id="error">{escape(error.error)}: {escape(error.description or "")}</p>')
    key = secrets.token_urlsafe(24)
    SIGNED_IN[key] = {"token": token, "claims": dict(token["userinfo"]), "userinfo": userinfo}
    request.session.clear()
    request.session["user"] = key
    return RedirectResponse("/", status_code=303)


@app.get("/call-api", response_class=HTMLResponse)
async def call_api(request: Request) -> Response:
    """Call the API with the signed-in person's access token, and show its answer."""
    user = signed_in(request)
    if user is None:
        return RedirectResponse("/", status_code=303)
    headers = {"Authorization": f"Bearer {user['token']['access_token']}"}
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(API_URL, headers=headers)
    try:
        body: Any = answer.json()
    except ValueError:
        body = answer.text
    return page(
        f'<p>GET {escape(API_URL)}: <span id="api-status">{answer.status_code}</span></p>'
        f'<div id="api-answer">{shown(body)}</div><p><a href="/">Back</a></p>'
    )


@app.get("/api/profile")
async def profile(
    user: Annotated[Principal, Security(auth.require(scopes=["demo:read"]))],
) -> dict[str, Any]:
    """The API: a valid access token of the issuer, for this audience, with demo:read."""
    return {
        "sub": user.sub,
        "tenant": user.tenant,
        "client_id": user.client_id,
        "scopes": sorted(user.scopes),
        "roles": sorted(user.roles),
    }


@app.get("/logout")
async def logout(request: Request) -> Response:
    """Forget the tokens here, then log out at the provider (which comes back to /)."""
    user = SIGNED_IN.pop(request.session.pop("user", ""), None)
    if user is None:
        return RedirectResponse("/", status_code=303)
    response: Response = await oauth.tessera.logout_redirect(
        request,
        post_logout_redirect_uri=f"{APP_URL}/",
        id_token_hint=user["token"]["id_token"],
    )
    return response


def main() -> None:
    """Serve on 127.0.0.1:$PORT (5000)."""
    if not CLIENT_ID or not CLIENT_SECRET:
        sys.exit(
            "Set TESSERA_CLIENT_ID and TESSERA_CLIENT_SECRET: the client_id and client_secret"
            " printed by `tessera admin client create` (see examples/README.md)."
        )
    print(f"Sign in with Tessera ({ISSUER}) at {APP_URL}/", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=PORT)


if __name__ == "__main__":
    main()
