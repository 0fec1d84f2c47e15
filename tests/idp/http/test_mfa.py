"""The second factor over real HTTP, on SQLite and PostgreSQL: a person enrols TOTP from their
own session, logs in with password then code (through /oauth2/token and through /auth/login),
uses and renews recovery codes, removes the factor; a tenant that requires MFA sends users to
enrol first. TOTP codes are computed with pyotp for the server's current time step."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest

from tessera import jose
from tessera.idp.flows.grants import MFA_OTP
from tessera.idp.services.clients import create_client

from ..conftest import audit_events
from .checks import assert_no_store, assert_oauth_error, payload
from .servers import AUDIENCE, BOTH_DATABASES, WEB, IdpServer

STEP = 30
REFRESH = "tessera_refresh"


pytestmark = pytest.mark.idp(databases=BOTH_DATABASES)


@dataclass
class Person:
    """A user of the test and what they know."""

    username: str
    password: str
    id: str
    secret: str = ""
    recovery_codes: tuple[str, ...] = ()

    def code(self, steps: int = 0) -> str:
        """The code of the current time step (+ ``steps``), never in a step's last seconds
        (the server must see the step the code was computed for)."""
        while time.time() % STEP > STEP - 3:
            time.sleep(0.5)
        return pyotp.TOTP(self.secret).at(time.time() + steps * STEP)


@pytest.fixture
def person(idp: IdpServer) -> Person:
    username, password = f"user-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    return Person(username, password, idp.add_user(username, password))


def token_login(http: httpx.Client, person: Person, **extra: str) -> httpx.Response:
    form = {"grant_type": "password", "client_id": WEB, "username": person.username}
    return http.post("/oauth2/token", data={**form, "password": person.password, **extra})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def enrol(http: httpx.Client, person: Person) -> str:
    """Enrol TOTP from the person's own session (a password login); returns the access token."""
    logged_in = token_login(http, person)
    assert logged_in.status_code == 200, logged_in.text
    access = logged_in.json()["access_token"]
    started = http.post("/auth/mfa/totp", headers=bearer(access))
    assert started.status_code == 200, started.text
    assert_no_store(started)
    enrolment = started.json()
    assert set(enrolment) == {"otpauth_uri", "secret", "qr_svg"}
    assert pyotp.parse_uri(enrolment["otpauth_uri"]).secret == enrolment["secret"]
    assert enrolment["qr_svg"].startswith("<svg")
    person.secret = enrolment["secret"]
    # The code of the step before: the login's code (this step) is then still unused.
    confirmed = http.post(
        "/auth/mfa/totp/confirm", data={"otp": person.code(-1)}, headers=bearer(access)
    )
    assert confirmed.status_code == 200, confirmed.text
    person.recovery_codes = tuple(confirmed.json()["recovery_codes"])
    assert len(person.recovery_codes) == 10
    return str(access)


def mfa_events(idp: IdpServer, user_id: str) -> list[tuple[str, str]]:
    return [
        (event.event, event.outcome)
        for event in audit_events(idp.provider)
        if event.subject == user_id and event.event.startswith(("mfa.", "login."))
    ]


def assert_nothing_secret(idp: IdpServer, *secrets: str) -> None:
    for event in audit_events(idp.provider):
        row = json.dumps([event.details, event.user_agent, event.actor, event.subject])
        for secret in secrets:
            assert secret not in row, (event.event, secret)


def verified_claims(idp: IdpServer, http: httpx.Client, token: str) -> dict[str, Any]:
    keys = http.get("/.well-known/jwks.json").json()
    return jose.jwt.decode(
        token, keys, algorithms=["ES256"], issuer=idp.url, audience=AUDIENCE, typ="at+jwt"
    )


# ---------------------------------------------------------------------- through /oauth2/token


def test_a_full_login_with_mfa_through_the_token_endpoint(
    idp: IdpServer, http: httpx.Client, person: Person
) -> None:
    enrol(http, person)
    challenged = token_login(http, person, scope="demo:read")
    assert challenged.status_code == 403, challenged.text
    assert_no_store(challenged)
    body = challenged.json()
    assert set(body) == {"error", "error_description", "mfa_token"}
    assert body["error"] == "mfa_required"
    mfa_token = body["mfa_token"]
    challenge = jose.jwt.decode_unverified(mfa_token)[1]
    assert challenge["sub"] == person.id and challenge["purpose"] == "verify"

    wrong = "000000" if person.code() != "000000" else "111111"
    form = {"grant_type": MFA_OTP, "client_id": WEB, "mfa_token": mfa_token}
    refused = http.post("/oauth2/token", data={**form, "otp": wrong})
    assert_oauth_error(refused, 400, "invalid_grant")

    code = person.code()
    granted = http.post("/oauth2/token", data={**form, "otp": code})
    assert granted.status_code == 200, granted.text
    assert_no_store(granted)
    answer = granted.json()
    claims = verified_claims(idp, http, answer["access_token"])
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["auth_time"] == challenge["auth_time"]
    assert (claims["sub"], claims["scope"]) == (person.id, "demo:read")
    assert answer["refresh_token"]

    # The same code again, even with a fresh challenge, is refused: each code is used once.
    again = token_login(http, person).json()["mfa_token"]
    replay = http.post("/oauth2/token", data={**form, "mfa_token": again, "otp": code})
    assert_oauth_error(replay, 400, "invalid_grant")

    refreshed = http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": WEB,
            "refresh_token": answer["refresh_token"],
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert payload(refreshed.json()["access_token"])["amr"] == ["pwd", "otp"]

    assert mfa_events(idp, person.id) == [
        ("login.succeeded", "success"),
        ("mfa.enrol_started", "success"),
        ("mfa.enrolled", "success"),
        ("mfa.challenged", "success"),
        ("mfa.failed", "failure"),
        ("mfa.verified", "success"),
        ("login.succeeded", "success"),
        ("mfa.challenged", "success"),
        ("mfa.failed", "failure"),
    ]
    assert_nothing_secret(idp, person.secret, code, mfa_token, *person.recovery_codes)
    for response in (refused, replay):
        for secret in (person.secret, code, mfa_token, wrong):
            assert secret not in response.text


def test_a_recovery_code_logs_in_once(idp: IdpServer, http: httpx.Client, person: Person) -> None:
    enrol(http, person)
    recovery = person.recovery_codes[0]
    for expected in (200, 400):
        mfa_token = token_login(http, person).json()["mfa_token"]
        response = http.post(
            "/oauth2/token",
            data={
                "grant_type": MFA_OTP,
                "client_id": WEB,
                "mfa_token": mfa_token,
                "recovery_code": recovery.upper(),
            },
        )
        assert response.status_code == expected, response.text
    assert ("mfa.recovery_code_used", "success") in mfa_events(idp, person.id)
    assert_nothing_secret(idp, recovery, recovery.upper())


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"otp": "123456"}, 400, "invalid_request"),
        ({"mfa_token": "not.a.token", "otp": "123456"}, 400, "invalid_grant"),
        ({"mfa_token": "x" * 5000, "otp": "123456"}, 400, "invalid_grant"),
        ({"mfa_token": "{token}"}, 400, "invalid_request"),
        ({"mfa_token": "{token}", "otp": "1", "recovery_code": "a-b"}, 400, "invalid_request"),
        ({"mfa_token": "{token}", "otp": "\u0661" * 6}, 400, "invalid_grant"),
        ({"mfa_token": "{token}", "recovery_code": "';drop table users"}, 400, "invalid_grant"),
    ],
    ids=["no-token", "malformed", "huge", "no-code", "both", "arabic-digits", "injection"],
)  # fmt: skip
def test_bad_second_steps_get_typed_errors(
    http: httpx.Client, person: Person, form: dict[str, str], status: int, error: str
) -> None:
    enrol(http, person)
    mfa_token = token_login(http, person).json()["mfa_token"]
    filled = {name: value.replace("{token}", mfa_token) for name, value in form.items()}
    response = http.post("/oauth2/token", data={"grant_type": MFA_OTP, "client_id": WEB, **filled})
    assert_oauth_error(response, status, error)
    assert mfa_token not in response.text


def test_an_mfa_token_of_another_client_is_refused(
    idp: IdpServer, http: httpx.Client, person: Person
) -> None:
    enrol(http, person)
    other = f"app-{uuid.uuid4().hex[:6]}"
    idp.add_login_client(other)
    mfa_token = token_login(http, person).json()["mfa_token"]
    response = http.post(
        "/oauth2/token",
        data={
            "grant_type": MFA_OTP,
            "client_id": other,
            "mfa_token": mfa_token,
            "otp": person.code(),
        },
    )
    assert_oauth_error(response, 400, "invalid_grant")
    # The browser's second step checks the token's client the same way: it is the web client's.
    assert (
        http.post(
            "/auth/login/mfa", data={"mfa_token": mfa_token, "otp": person.code()}
        ).status_code
        == 200
    )


# ---------------------------------------------------------------------- through /auth/login


def test_a_full_browser_login_with_mfa(idp: IdpServer, http: httpx.Client, person: Person) -> None:
    enrol(http, person)
    first = http.post(
        "/auth/login", data={"username": person.username, "password": person.password}
    )
    assert first.status_code == 403, first.text
    assert first.json()["error"] == "mfa_required"
    assert first.headers.get_list("set-cookie") == []  # no session before the second factor
    mfa_token = first.json()["mfa_token"]

    response = http.post("/auth/login/mfa", data={"mfa_token": mfa_token, "otp": person.code()})
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert "refresh_token" not in body
    claims = verified_claims(idp, http, body["access_token"])
    assert claims["amr"] == ["pwd", "otp"] and claims["client_id"] == WEB
    assert claims["auth_time"] == jose.jwt.decode_unverified(mfa_token)[1]["auth_time"]
    cookies = {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}
    assert "HttpOnly" in cookies[REFRESH] and "Path=/auth" in cookies[REFRESH]

    csrf = http.cookies["tessera_csrf"]
    refreshed = http.post("/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert refreshed.status_code == 200, refreshed.text
    assert payload(refreshed.json()["access_token"])["amr"] == ["pwd", "otp"]


def test_a_browser_login_with_a_recovery_code(http: httpx.Client, person: Person) -> None:
    enrol(http, person)
    first = http.post(
        "/auth/login", data={"username": person.username, "password": person.password}
    )
    response = http.post(
        "/auth/login/mfa",
        data={"mfa_token": first.json()["mfa_token"], "recovery_code": person.recovery_codes[3]},
    )
    assert response.status_code == 200, response.text
    assert payload(response.json()["access_token"])["amr"] == ["pwd", "otp"]


@pytest.mark.parametrize(
    "form",
    [{}, {"mfa_token": "nope", "otp": "123456"}, {"mfa_token": "a.b.c", "recovery_code": "x"}],
    ids=["empty", "malformed", "unsigned"],
)
def test_the_browser_second_step_refuses_bad_input(
    http: httpx.Client, form: dict[str, str]
) -> None:
    response = http.post("/auth/login/mfa", data=form)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in {"invalid_request", "invalid_grant"}
    assert response.headers.get_list("set-cookie") == []


# ---------------------------------------------------------------------- self-service


def test_renewing_recovery_codes_needs_a_current_code(
    idp: IdpServer, http: httpx.Client, person: Person
) -> None:
    access = enrol(http, person)
    wrong = "000000" if person.code() != "000000" else "111111"
    refused = http.post("/auth/mfa/recovery-codes", data={"otp": wrong}, headers=bearer(access))
    assert_oauth_error(refused, 400, "invalid_grant")
    renewed = http.post(
        "/auth/mfa/recovery-codes", data={"otp": person.code()}, headers=bearer(access)
    )
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()["recovery_codes"]
    assert len(fresh) == 10 and not set(fresh) & set(person.recovery_codes)
    status = http.get("/auth/mfa", headers=bearer(access)).json()
    assert status["totp"] is True and status["recovery_codes_left"] == 10

    mfa_token = token_login(http, person).json()["mfa_token"]
    form = {"grant_type": MFA_OTP, "client_id": WEB, "mfa_token": mfa_token}
    old = http.post("/oauth2/token", data={**form, "recovery_code": person.recovery_codes[0]})
    assert_oauth_error(old, 400, "invalid_grant")
    new = http.post("/oauth2/token", data={**form, "recovery_code": fresh[0]})
    assert new.status_code == 200, new.text
    assert ("mfa.recovery_codes_regenerated", "success") in mfa_events(idp, person.id)


def test_removing_the_factor_with_a_recovery_code(
    idp: IdpServer, http: httpx.Client, person: Person
) -> None:
    access = enrol(http, person)
    refused = http.post("/auth/mfa/totp/remove", data={"otp": "12"}, headers=bearer(access))
    assert_oauth_error(refused, 400, "invalid_grant")
    removed = http.post(
        "/auth/mfa/totp/remove",
        data={"recovery_code": person.recovery_codes[0]},
        headers=bearer(access),
    )
    assert removed.status_code == 200, removed.text
    assert http.get("/auth/mfa", headers=bearer(access)).json() == {
        "totp": False,
        "enabled_at": None,
        "pending": False,
        "recovery_codes_left": 0,
    }
    logged_in = token_login(http, person)  # the password alone is enough again
    assert logged_in.status_code == 200, logged_in.text
    assert payload(logged_in.json()["access_token"])["amr"] == ["pwd"]
    assert ("mfa.reset", "success") in mfa_events(idp, person.id)


def test_enrolling_twice_is_refused(http: httpx.Client, person: Person) -> None:
    access = enrol(http, person)
    again = http.post("/auth/mfa/totp", headers=bearer(access))
    assert_oauth_error(again, 400, "invalid_request")


@pytest.mark.parametrize("path", ["/auth/mfa", "/auth/mfa/totp", "/auth/mfa/recovery-codes"])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic ZGVtbzp4", "Bearer {client_token}"],
    ids=["none", "garbage", "basic", "client-token"],
)
def test_self_service_needs_a_users_access_token(
    idp: IdpServer, http: httpx.Client, path: str, authorization: str | None
) -> None:
    headers = {}
    if authorization is not None:
        if "{client_token}" in authorization:
            client_token = http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=("demo", idp.demo_secret),
            ).json()["access_token"]
            authorization = authorization.replace("{client_token}", client_token)
        headers["Authorization"] = authorization
    if path == "/auth/mfa":
        response = http.get(path, headers=headers)
    else:
        response = http.post(path, headers=headers, data={"otp": "123456"})
    # The provider's guard answers as every guard does (RFC 6750 §3.1): a bare challenge when
    # there is no bearer token at all, invalid_token for one it refuses.
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="tessera"')
    assert response.headers["cache-control"] == "no-store"
    if authorization is not None and authorization.startswith("Bearer"):
        assert response.json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in challenge
    else:
        assert "error=" not in challenge


def test_a_revoked_access_token_cannot_manage_the_factor(
    http: httpx.Client, person: Person
) -> None:
    access = enrol(http, person)
    revoked = http.post("/oauth2/revoke", data={"token": access, "client_id": WEB})
    assert revoked.status_code == 200, revoked.text
    response = http.get("/auth/mfa", headers=bearer(access))
    assert_oauth_error(response, 401, "invalid_token")


# ---------------------------------------------------------------------- the required policy


def strict_tenant(idp: IdpServer) -> tuple[str, str, str]:
    """A tenant that requires MFA, its public login client and a confidential first-party
    client (id, secret)."""
    tenant = f"strict-{uuid.uuid4().hex[:6]}"
    idp.add_tenant(tenant, mfa_policy="required")
    idp.add_login_client(f"{tenant}-web", tenant_id=tenant)
    with idp.provider.database.session() as session:
        made = create_client(
            session,
            idp.provider.master,
            tenant_id=tenant,
            name="strict app",
            grant_types=("password", "refresh_token"),
            audience=(AUDIENCE,),
            allowed_scopes=("demo:read",),
            default_scopes=("demo:read",),
            first_party=True,
            client_id=f"{tenant}-app",
        )
    assert made.secret is not None
    return tenant, made.client.id, made.secret


def test_required_policy_enrolment_through_the_token_endpoint(
    idp: IdpServer, http: httpx.Client
) -> None:
    tenant, app, secret = strict_tenant(idp)
    person = Person("carol", f"pw-{uuid.uuid4().hex}", "")
    person.id = idp.add_user(person.username, person.password, tenant)
    form = {"grant_type": "password", "username": person.username, "password": person.password}
    first = http.post("/oauth2/token", data=form, auth=(app, secret))
    assert first.status_code == 403, first.text
    assert first.json()["error"] == "mfa_enrollment_required"
    mfa_token = first.json()["mfa_token"]
    assert jose.jwt.decode_unverified(mfa_token)[1]["purpose"] == "enrol"

    # An enrolment token is no verification token, and it opens no self-service route.
    assert http.get("/auth/mfa", headers=bearer(mfa_token)).status_code == 401
    started = http.post("/auth/mfa/totp", data={"mfa_token": mfa_token})
    assert started.status_code == 200, started.text
    person.secret = started.json()["secret"]
    assert pyotp.parse_uri(started.json()["otpauth_uri"]).issuer == tenant

    confirm = {"mfa_token": mfa_token, "otp": person.code()}
    unauthenticated = http.post("/auth/mfa/totp/confirm", data=confirm)
    assert_oauth_error(unauthenticated, 401, "invalid_client")
    done = http.post("/auth/mfa/totp/confirm", data=confirm, auth=(app, secret))
    assert done.status_code == 200, done.text
    answer = done.json()
    assert len(answer["recovery_codes"]) == 10 and answer["refresh_token"]
    claims = verified_claims(idp, http, answer["access_token"])
    assert claims["amr"] == ["pwd", "otp"] and claims["tenant"] == tenant
    assert claims["auth_time"] == jose.jwt.decode_unverified(mfa_token)[1]["auth_time"]

    second = http.post("/oauth2/token", data=form, auth=(app, secret))
    assert second.status_code == 403 and second.json()["error"] == "mfa_required"
    assert mfa_events(idp, person.id) == [
        ("mfa.challenged", "success"),
        ("mfa.enrol_started", "success"),
        ("mfa.enrolled", "success"),
        ("login.succeeded", "success"),
        ("mfa.challenged", "success"),
    ]
    assert_nothing_secret(idp, person.secret, mfa_token, *answer["recovery_codes"])


def test_required_policy_enrolment_in_the_browser(idp: IdpServer, http: httpx.Client) -> None:
    tenant, _, _ = strict_tenant(idp)
    person = Person("dave", f"pw-{uuid.uuid4().hex}", "")
    person.id = idp.add_user(person.username, person.password, tenant)
    first = http.post(
        "/auth/login",
        data={
            "username": person.username,
            "password": person.password,
            "client_id": f"{tenant}-web",
        },
    )
    assert first.status_code == 403 and first.json()["error"] == "mfa_enrollment_required"
    mfa_token = first.json()["mfa_token"]
    # Not a verification: the second step of a login needs a factor first.
    early = http.post(
        "/auth/login/mfa", data={"mfa_token": mfa_token, "recovery_code": "abcde-fghjk"}
    )
    assert_oauth_error(early, 400, "invalid_request")

    started = http.post("/auth/mfa/totp", data={"mfa_token": mfa_token})
    person.secret = started.json()["secret"]
    done = http.post("/auth/mfa/totp/confirm", data={"mfa_token": mfa_token, "otp": person.code()})
    assert done.status_code == 200, done.text
    body = done.json()
    assert "refresh_token" not in body and len(body["recovery_codes"]) == 10
    assert payload(body["access_token"])["amr"] == ["pwd", "otp"]
    assert REFRESH in {line.split("=", 1)[0] for line in done.headers.get_list("set-cookie")}


def test_openapi_documents_the_second_factor(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert {
        "/auth/login/mfa",
        "/auth/mfa",
        "/auth/mfa/totp",
        "/auth/mfa/totp/confirm",
        "/auth/mfa/recovery-codes",
        "/auth/mfa/totp/remove",
    } <= set(paths)
    token_form = paths["/oauth2/token"]["post"]["requestBody"]["content"]
    fields = token_form["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert {"mfa_token", "otp", "recovery_code"} <= set(fields)
    assert MFA_OTP in fields["grant_type"]["description"]


def test_a_third_party_apps_token_of_the_user_cannot_manage_the_factor(
    idp: IdpServer, http: httpx.Client, person: Person
) -> None:
    # A token naming the user, issued to the demo client (not first-party): it could otherwise
    # enrol an authenticator of the app's choosing on the user's account.
    foreign = idp.provider.issuer.issue(
        tenant_id="default", subject=person.id, client_id="demo", scope=(), audience=AUDIENCE
    ).token
    assert_oauth_error(http.post("/auth/mfa/totp", headers=bearer(foreign)), 401, "invalid_token")
    assert_oauth_error(http.get("/auth/mfa", headers=bearer(foreign)), 401, "invalid_token")


def test_confirming_needs_an_enrolment_token(http: httpx.Client, person: Person) -> None:
    enrol(http, person)
    mfa_token = token_login(http, person).json()["mfa_token"]  # purpose "verify"
    response = http.post(
        "/auth/mfa/totp/confirm", data={"mfa_token": mfa_token, "otp": person.code()}
    )
    assert_oauth_error(response, 400, "invalid_grant")
    started = http.post("/auth/mfa/totp", data={"mfa_token": mfa_token})
    assert_oauth_error(started, 400, "invalid_grant")


def test_guessing_codes_is_throttled(idp: IdpServer, http: httpx.Client, person: Person) -> None:
    enrol(http, person)
    mfa_token = token_login(http, person).json()["mfa_token"]
    wrong = "000000" if person.code() != "000000" else "111111"
    form = {"grant_type": MFA_OTP, "client_id": WEB, "mfa_token": mfa_token, "otp": wrong}
    statuses = [http.post("/oauth2/token", data=form).status_code for _ in range(6)]
    free = idp.settings.lockout_free_attempts
    assert statuses[:free] == [400] * free and 429 in statuses[free:]
    throttled = http.post("/oauth2/token", data={**form, "otp": person.code()})
    assert_oauth_error(throttled, 429, "invalid_grant")  # checked before the code: not spent
    assert ("mfa.throttled", "failure") in mfa_events(idp, person.id)
