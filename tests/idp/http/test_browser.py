"""First-party browser login over real HTTP: the refresh token lives in an HttpOnly, SameSite=Strict
cookie scoped to /auth, guarded by a double-submit CSRF token; refresh rotates it, reuse revokes
the family, logout clears it, logout-all refuses every token of the user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie

import httpx
import pytest

from tessera.idp.services.clients import create_client

from .checks import assert_no_store, assert_oauth_error, payload
from .servers import AUDIENCE, DEMO, WEB, IdpServer, introspect, serving

REFRESH = "tessera_refresh"
CSRF = "tessera_csrf"


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header's text, by cookie name."""
    found: dict[str, str] = {}
    for line in response.headers.get_list("set-cookie"):
        found[line.split("=", 1)[0]] = line
    return found


def attributes(line: str) -> dict[str, str]:
    """The attributes of one Set-Cookie line, names lower-cased (flags map to "")."""
    parts = [part.strip() for part in line.split(";")[1:]]
    return {name.lower(): value for name, _, value in (part.partition("=") for part in parts)}


def value_of(line: str) -> str:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(line)
    return next(iter(cookie.values())).value


@dataclass
class Session:
    """A browser's cookies for the provider, sent by hand so a test can replay old ones."""

    refresh: str
    csrf: str
    access_token: str

    def post(
        self,
        http: httpx.Client,
        path: str,
        *,
        refresh: str | None = None,
        csrf_cookie: str | None = None,
        csrf_header: str | None = None,
        send_header: bool = True,
    ) -> httpx.Response:
        http.cookies.clear()
        cookies = {REFRESH: refresh or self.refresh, CSRF: csrf_cookie or self.csrf}
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items() if v)}
        if send_header:
            headers["X-CSRF-Token"] = csrf_header or self.csrf
        response = http.post(path, headers=headers)
        http.cookies.clear()
        return response

    def rotate(self, http: httpx.Client) -> httpx.Response:
        """POST /auth/refresh with this session; on success, keep the new cookies."""
        response = self.post(http, "/auth/refresh")
        if response.status_code == 200:
            cookies = set_cookies(response)
            self.refresh = value_of(cookies[REFRESH])
            self.csrf = value_of(cookies[CSRF])
            self.access_token = response.json()["access_token"]
        return response


def login(http: httpx.Client, username: str, password: str) -> tuple[httpx.Response, Session]:
    http.cookies.clear()
    response = http.post("/auth/login", data={"username": username, "password": password})
    http.cookies.clear()
    assert response.status_code == 200, response.text
    cookies = set_cookies(response)
    session = Session(
        value_of(cookies[REFRESH]), value_of(cookies[CSRF]), response.json()["access_token"]
    )
    return response, session


@pytest.fixture
def user(idp: IdpServer) -> tuple[str, str, str]:
    """A fresh user of the default tenant: (username, password, id)."""
    username = f"user-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    return username, password, idp.add_user(username, password)


@pytest.fixture(scope="module")
def secure_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    with serving("sqlite", tmp_path_factory.mktemp("secure"), cookie_secure=True) as server:
        yield server


def test_login_sets_an_httponly_strict_refresh_cookie_scoped_to_auth_and_a_csrf_cookie(
    idp: IdpServer, http: httpx.Client, user: tuple[str, str, str]
) -> None:
    username, password, user_id = user
    response, session = login(http, username, password)
    assert_no_store(response)
    body = response.json()
    assert "refresh_token" not in body
    assert body["token_type"] == "Bearer"
    claims = payload(body["access_token"])
    assert (claims["sub"], claims["client_id"], claims["aud"]) == (user_id, WEB, AUDIENCE)
    assert claims["amr"] == ["pwd"]

    cookies = set_cookies(response)
    refresh = attributes(cookies[REFRESH])
    assert "httponly" in refresh
    assert refresh["samesite"].lower() == "strict"
    assert refresh["path"] == "/auth"
    assert int(refresh["max-age"]) == idp.settings.refresh_idle_ttl
    assert "secure" not in refresh  # cookie_secure is off for this server (plain http)
    assert len(session.refresh) >= 43  # 256 bits

    csrf = attributes(cookies[CSRF])
    assert "httponly" not in csrf  # the page's script reads it to echo it in a header
    assert csrf["samesite"].lower() == "strict"
    assert csrf["path"] == "/"
    assert session.csrf and session.csrf != session.refresh


def test_login_cookies_are_secure_when_cookie_secure_is_on(secure_idp: IdpServer) -> None:
    with secure_idp.client() as http:
        response = http.post(
            "/auth/login", data={"username": "admin", "password": secure_idp.admin_password}
        )
    assert response.status_code == 200, response.text
    cookies = set_cookies(response)
    assert set(cookies) == {REFRESH, CSRF}
    for line in cookies.values():
        assert "secure" in attributes(line), line
    assert "httponly" in attributes(cookies[REFRESH])


@pytest.mark.parametrize(
    "form",
    [
        {"username": "admin", "password": "wrong"},
        {"username": "nobody-here", "password": "wrong"},
    ],
    ids=["wrong-password", "unknown-user"],
)
def test_a_failed_login_sets_no_cookie(http: httpx.Client, form: dict[str, str]) -> None:
    response = http.post("/auth/login", data=form)
    assert_oauth_error(response, 400, "invalid_grant")
    assert response.headers.get_list("set-cookie") == []


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"username": "admin"}, 400, "invalid_request"),
        ({"username": "admin", "password": "x", "client_id": DEMO}, 400, "unauthorized_client"),
        ({"username": "admin", "password": "x", "client_id": "nope"}, 400, "unauthorized_client"),
    ],
    ids=["no-password", "not-first-party", "unknown-client"],
)
def test_login_refuses_bad_requests(
    http: httpx.Client, form: dict[str, str], status: int, error: str
) -> None:
    assert_oauth_error(http.post("/auth/login", data=form), status, error)


def test_refresh_rotates_the_cookie_and_mints_a_new_access_token(
    http: httpx.Client, user: tuple[str, str, str]
) -> None:
    _, session = login(http, *user[:2])
    old_refresh, old_csrf, old_access = session.refresh, session.csrf, session.access_token
    response = session.rotate(http)
    assert response.status_code == 200, response.text
    assert_no_store(response)
    assert "refresh_token" not in response.json()
    assert session.refresh != old_refresh
    assert session.csrf != old_csrf
    assert payload(session.access_token)["jti"] != payload(old_access)["jti"]
    assert payload(session.access_token)["sub"] == user[2]
    refresh = attributes(set_cookies(response)[REFRESH])
    assert "httponly" in refresh and refresh["path"] == "/auth"
    assert session.rotate(http).status_code == 200  # the new cookie works in turn


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"send_header": False}, 403),
        ({"csrf_header": "not-the-cookie"}, 403),
        ({"csrf_cookie": "", "csrf_header": "anything"}, 403),
        ({"refresh": "", "send_header": True}, 401),
    ],
    ids=["no-csrf-header", "wrong-csrf-header", "no-csrf-cookie", "no-refresh-cookie"],
)
@pytest.mark.parametrize("path", ["/auth/refresh", "/auth/logout", "/auth/logout-all"])
def test_cookie_endpoints_need_the_cookie_and_a_matching_csrf_header(
    http: httpx.Client,
    user: tuple[str, str, str],
    path: str,
    change: dict[str, object],
    status: int,
) -> None:
    _, session = login(http, *user[:2])
    if change.get("refresh") == "":
        http.cookies.clear()
        response = http.post(
            path, headers={"Cookie": f"{CSRF}={session.csrf}", "X-CSRF-Token": session.csrf}
        )
    else:
        response = session.post(http, path, **change)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"] in {"invalid_request", "invalid_grant"}
    assert REFRESH not in set_cookies(response)
    assert session.rotate(http).status_code == 200  # the refused request changed nothing


def test_reusing_an_old_refresh_cookie_revokes_the_whole_family(
    idp: IdpServer, http: httpx.Client, user: tuple[str, str, str]
) -> None:
    _, session = login(http, *user[:2])
    stolen = session.refresh
    assert session.rotate(http).status_code == 200
    replay = session.post(http, "/auth/refresh", refresh=stolen)
    assert_oauth_error(replay, 401, "invalid_grant")
    # the legitimate holder's newer cookie is dead too: the family is revoked
    assert_oauth_error(session.rotate(http), 401, "invalid_grant")
    assert introspect(http, session.refresh, DEMO, idp.demo_secret) == {"active": False}


def test_logout_clears_the_cookies_and_revokes_the_session(
    idp: IdpServer, http: httpx.Client, user: tuple[str, str, str]
) -> None:
    _, session = login(http, *user[:2])
    response = session.post(http, "/auth/logout")
    assert response.status_code == 200, response.text
    cleared = set_cookies(response)
    assert set(cleared) == {REFRESH, CSRF}
    assert attributes(cleared[REFRESH])["path"] == "/auth"
    assert attributes(cleared[CSRF])["path"] == "/"
    for line in cleared.values():
        assert value_of(line) in {"", '""'}
        assert attributes(line)["max-age"] == "0"
    assert_oauth_error(session.rotate(http), 401, "invalid_grant")
    assert introspect(http, session.refresh, DEMO, idp.demo_secret) == {"active": False}


def test_logout_all_refuses_every_token_of_the_user(
    idp: IdpServer, http: httpx.Client, user: tuple[str, str, str]
) -> None:
    _, laptop = login(http, *user[:2])
    _, phone = login(http, *user[:2])
    bystander = f"bystander-{uuid.uuid4().hex[:8]}"
    idp.add_user(bystander, "bystander password")
    _, other = login(http, bystander, "bystander password")

    response = laptop.post(http, "/auth/logout-all")
    assert response.status_code == 200, response.text
    assert set(set_cookies(response)) == {REFRESH, CSRF}

    for token in (laptop.access_token, phone.access_token, laptop.refresh, phone.refresh):
        assert introspect(http, token, DEMO, idp.demo_secret) == {"active": False}
    assert_oauth_error(phone.rotate(http), 401, "invalid_grant")
    # nobody else was logged out
    assert introspect(http, other.access_token, DEMO, idp.demo_secret)["active"] is True
    assert other.rotate(http).status_code == 200


def test_browser_login_refuses_a_confidential_first_party_client(
    idp: IdpServer, http: httpx.Client
) -> None:
    """A browser holds no client secret: a confidential client logs users in only at
    /oauth2/token, where it must authenticate."""
    with idp.provider.database.session() as session:
        create_client(
            session,
            idp.provider.master,
            tenant_id="default",
            name="confidential first party",
            grant_types=("password", "refresh_token"),
            audience=("demo-api",),
            first_party=True,
            client_id="confidential-web",
        )
    form = {"username": "admin", "password": idp.admin_password, "client_id": "confidential-web"}
    response = http.post("/auth/login", data=form)
    assert_oauth_error(response, 400, "unauthorized_client")
    assert response.headers.get_list("set-cookie") == []
