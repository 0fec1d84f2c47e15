"""The second factor as services (no HTTP): TOTP enrolment and verification at fixed times,
single use (also under concurrency, across two nodes), recovery codes, reset, the signed
mfa_token, and the password grant's second step — audited, and never a secret in a row."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from tessera import jose
from tessera.idp.errors import OAuthError, Throttled
from tessera.idp.flows.grants import MFA_OTP, token_response
from tessera.idp.flows.mfa_challenge import pass_challenge
from tessera.idp.http.answers import oauth_status
from tessera.idp.provider import Provider
from tessera.idp.services.audit import Context
from tessera.idp.services.challenges import TTL, Challenges, MfaRequired
from tessera.idp.services.mfa import (
    RECOVERY_PURPOSE,
    confirm_enrolment,
    regenerate_recovery_codes,
    reset_mfa,
    start_enrolment,
    verify_second_factor,
)
from tessera.idp.services.refresh import Refused
from tessera.idp.services.secrets import MasterKey, MasterKeyError
from tessera.idp.store.models import AuditEvent, Client, RecoveryCode, Tenant, User

from ..conftest import (
    CHEAP_PASSWORDS,
    TENANT,
    Registered,
    add_client,
    add_tenant,
    add_user,
    audit_events,
    first_party_client,
    make_settings,
    run_together,
)

CONTEXT = Context(ip="203.0.113.9", user_agent="pytest")
PASSWORD = "correct horse battery staple"
T0 = 1_700_000_010  # the first second of a TOTP step
NOW = T0 + 15  # the middle of that step
STEP = 30


@dataclass
class Enrolled:
    """A user with a confirmed TOTP factor (enrolled at ``NOW``)."""

    user_id: str
    secret: str
    recovery_codes: list[str]

    def code(self, at: int) -> str:
        return pyotp.TOTP(self.secret).at(at)


def user_row(provider: Provider, user_id: str) -> User:
    with provider.database.session(readonly=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        return user


def start(provider: Provider, user_id: str, now: int = NOW) -> Any:
    with provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        return start_enrolment(
            session, provider.master, user, issuer_name="Acme", context=CONTEXT, now=now
        )


def confirm(provider: Provider, user_id: str, code: str, now: int = NOW) -> list[str] | None:
    with provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        return confirm_enrolment(session, provider.master, user, code, context=CONTEXT, now=now)


def enrol(provider: Provider, tenant: str, username: str = "ada", now: int = NOW) -> Enrolled:
    user = add_user(provider, tenant, username=username, password=PASSWORD)
    enrolment = start(provider, user.id, now)
    codes = confirm(provider, user.id, pyotp.TOTP(enrolment.secret).at(now), now)
    assert codes is not None
    return Enrolled(user.id, enrolment.secret, codes)


def verify(
    provider: Provider,
    user_id: str,
    *,
    now: int,
    otp: str | None = None,
    recovery_code: str | None = None,
) -> bool:
    with provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        return verify_second_factor(
            session,
            provider.master,
            user,
            otp=otp,
            recovery_code=recovery_code,
            context=CONTEXT,
            now=now,
        )


def events_of(provider: Provider, user_id: str) -> list[tuple[str, str]]:
    return [
        (event.event, event.outcome)
        for event in audit_events(provider)
        if event.subject == user_id and event.event.startswith("mfa.")
    ]


def assert_nothing_secret_in_audit(provider: Provider, *secrets: str) -> None:
    for event in audit_events(provider):
        row = json.dumps(
            [event.details, event.user_agent, event.actor, event.subject, event.client_id]
        )
        for secret in secrets:
            assert secret not in row, (event.event, secret)


@pytest.fixture
def cheap(cheap_passwords: Provider, tenant: str) -> Provider:
    return cheap_passwords


# ---------------------------------------------------------------------- enrolment


def test_enrolment_gives_uri_secret_and_qr_and_confirms_with_a_first_code(
    cheap: Provider, tenant: str
) -> None:
    user = add_user(cheap, tenant, username="Ada.Lovelace", password=PASSWORD)
    enrolment = start(cheap, user.id)
    assert re.fullmatch(r"[A-Z2-7]{32}", enrolment.secret)  # 160 bits of base32
    parsed = pyotp.parse_uri(enrolment.otpauth_uri)
    assert parsed.secret == enrolment.secret
    assert (parsed.issuer, parsed.name) == ("Acme", "Ada.Lovelace")
    assert (parsed.digits, parsed.interval) == (6, 30)
    assert enrolment.qr_svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in (
        enrolment.qr_svg
    )
    pending = user_row(cheap, user.id)
    assert pending.mfa_pending is not None and pending.mfa_secret is None
    assert enrolment.secret.encode() not in pending.mfa_pending  # sealed

    codes = confirm(cheap, user.id, pyotp.TOTP(enrolment.secret).at(NOW))
    assert codes is not None and len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}", code) for code in codes)
    enabled = user_row(cheap, user.id)
    assert enabled.mfa_secret == pending.mfa_pending and enabled.mfa_pending is None
    assert enabled.mfa_enabled_at == NOW and enabled.mfa_last_step == NOW // STEP
    with cheap.database.session(readonly=True) as session:
        stored = {row.code_hash for row in session.scalars(select(RecoveryCode))}
    assert stored == {cheap.master.keyed_hash(RECOVERY_PURPOSE, c.replace("-", "")) for c in codes}
    assert events_of(cheap, user.id) == [
        ("mfa.enrol_started", "success"),
        ("mfa.enrolled", "success"),
    ]
    assert_nothing_secret_in_audit(cheap, enrolment.secret, *codes)


def test_the_sealed_secret_is_bound_to_its_user(cheap: Provider, tenant: str) -> None:
    ada = enrol(cheap, tenant)
    bob = add_user(cheap, tenant, username="bob", password=PASSWORD)
    with cheap.database.session() as session:
        stolen = session.get(User, ada.user_id)
        target = session.get(User, bob.id)
        assert stolen is not None and target is not None
        target.mfa_secret = stolen.mfa_secret  # copied to another row, it no longer opens
    with pytest.raises(MasterKeyError):
        verify(cheap, bob.id, now=NOW + 60, otp=ada.code(NOW + 60))


def test_a_wrong_first_code_keeps_the_enrolment_pending(cheap: Provider, tenant: str) -> None:
    user = add_user(cheap, tenant, password=PASSWORD)
    enrolment = start(cheap, user.id)
    assert confirm(cheap, user.id, pyotp.TOTP(enrolment.secret).at(NOW + 2 * STEP)) is None
    assert confirm(cheap, user.id, "12345") is None
    row = user_row(cheap, user.id)
    assert row.mfa_secret is None and row.mfa_pending is not None
    assert events_of(cheap, user.id) == [
        ("mfa.enrol_started", "success"),
        ("mfa.enrol_failed", "failure"),
        ("mfa.enrol_failed", "failure"),
    ]
    assert confirm(cheap, user.id, pyotp.TOTP(enrolment.secret).at(NOW)) is not None


def test_starting_again_replaces_the_pending_secret(cheap: Provider, tenant: str) -> None:
    user = add_user(cheap, tenant, password=PASSWORD)
    first = start(cheap, user.id)
    second = start(cheap, user.id)
    assert first.secret != second.secret
    assert confirm(cheap, user.id, pyotp.TOTP(first.secret).at(NOW)) is None
    assert confirm(cheap, user.id, pyotp.TOTP(second.secret).at(NOW)) is not None


def test_enrolment_is_refused_while_a_factor_is_enrolled(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    with pytest.raises(OAuthError) as caught:
        start(cheap, enrolled.user_id)
    assert (caught.value.error, oauth_status(caught.value)) == ("invalid_request", 400)


def test_confirming_without_an_enrolment_is_refused(cheap: Provider, tenant: str) -> None:
    user = add_user(cheap, tenant, password=PASSWORD)
    with pytest.raises(OAuthError) as caught:
        confirm(cheap, user.id, "123456")
    assert caught.value.error == "invalid_request"


# ---------------------------------------------------------------------- verification


@pytest.mark.parametrize("steps", [-1, 0, 1])
def test_a_code_one_step_early_or_late_is_accepted(
    cheap: Provider, tenant: str, steps: int
) -> None:
    enrolled = enrol(cheap, tenant)
    later = NOW + 10 * STEP
    assert verify(cheap, enrolled.user_id, now=later, otp=enrolled.code(later + steps * STEP))
    assert events_of(cheap, enrolled.user_id)[-1] == ("mfa.verified", "success")


@pytest.mark.parametrize("steps", [-2, 2, -20])
def test_a_code_two_steps_away_is_refused(cheap: Provider, tenant: str, steps: int) -> None:
    enrolled = enrol(cheap, tenant)
    later = NOW + 30 * STEP
    assert not verify(cheap, enrolled.user_id, now=later, otp=enrolled.code(later + steps * STEP))
    assert events_of(cheap, enrolled.user_id)[-1] == ("mfa.failed", "failure")


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5"])
def test_malformed_codes_are_refused(cheap: Provider, tenant: str, code: str) -> None:
    enrolled = enrol(cheap, tenant)
    assert not verify(cheap, enrolled.user_id, now=NOW + 60, otp=code)


def test_spaces_in_a_code_are_ignored(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    code = enrolled.code(NOW + 60)
    assert verify(cheap, enrolled.user_id, now=NOW + 60, otp=f" {code[:3]} {code[3:]} ")


def test_each_code_is_used_once(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    later = NOW + 10 * STEP
    code = enrolled.code(later)
    assert verify(cheap, enrolled.user_id, now=later, otp=code)
    assert not verify(cheap, enrolled.user_id, now=later, otp=code)
    assert not verify(cheap, enrolled.user_id, now=later + STEP, otp=code)  # still in the window
    # A code of an earlier step than the last one used is spent too.
    assert not verify(cheap, enrolled.user_id, now=later + STEP, otp=enrolled.code(later - STEP))
    assert verify(cheap, enrolled.user_id, now=later + STEP, otp=enrolled.code(later + STEP))


def test_the_code_that_confirmed_the_enrolment_is_spent(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    assert not verify(cheap, enrolled.user_id, now=NOW, otp=enrolled.code(NOW))


def test_two_concurrent_verifications_of_one_code_one_wins(
    cheap: Provider, tenant: str, make_provider: Callable[..., Provider]
) -> None:
    enrolled = enrol(cheap, tenant)
    other_node = make_provider(cheap.settings)
    for round_ in range(1, 6):
        at = NOW + round_ * 10 * STEP
        code = enrolled.code(at)
        results = run_together(
            [
                lambda node=node, at=at, code=code: verify(node, enrolled.user_id, now=at, otp=code)
                for node in (cheap, other_node, cheap, other_node)
            ]
        )
        assert sorted(map(str, results)) == ["False", "False", "False", "True"], results
    outcomes = [outcome for event, outcome in events_of(cheap, enrolled.user_id)[2:]]
    assert outcomes.count("success") == 5 and outcomes.count("failure") == 15


def test_recovery_code_works_once(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    first, second = enrolled.recovery_codes[:2]
    assert verify(cheap, enrolled.user_id, now=NOW + 60, recovery_code=first)
    assert not verify(cheap, enrolled.user_id, now=NOW + 60, recovery_code=first)
    # Written the way people copy it: upper case, without the dash, o for 0 and l for 1.
    typed = second.upper().replace("-", " ").replace("0", "O").replace("1", "l")
    assert verify(cheap, enrolled.user_id, now=NOW + 60, recovery_code=typed)
    assert not verify(cheap, enrolled.user_id, now=NOW + 60, recovery_code="not-a-code")
    used = [event for event in audit_events(cheap) if event.event == "mfa.recovery_code_used"]
    assert [json.loads(event.details)["remaining"] for event in used] == [9, 8]
    assert events_of(cheap, enrolled.user_id)[-3:] == [
        ("mfa.failed", "failure"),
        ("mfa.recovery_code_used", "success"),
        ("mfa.failed", "failure"),
    ]
    assert_nothing_secret_in_audit(cheap, enrolled.secret, *enrolled.recovery_codes)


def test_two_concurrent_uses_of_one_recovery_code_one_wins(
    cheap: Provider, tenant: str, make_provider: Callable[..., Provider]
) -> None:
    enrolled = enrol(cheap, tenant)
    other_node = make_provider(cheap.settings)
    code = enrolled.recovery_codes[0]
    results = run_together(
        [
            lambda node=node: verify(node, enrolled.user_id, now=NOW, recovery_code=code)
            for node in (cheap, other_node, cheap, other_node)
        ]
    )
    assert sorted(map(str, results)) == ["False", "False", "False", "True"], results


def test_a_recovery_code_of_another_user_is_refused(cheap: Provider, tenant: str) -> None:
    ada = enrol(cheap, tenant)
    bob = enrol(cheap, tenant, username="bob")
    assert not verify(cheap, bob.user_id, now=NOW, recovery_code=ada.recovery_codes[0])
    assert verify(cheap, ada.user_id, now=NOW, recovery_code=ada.recovery_codes[0])


def test_regeneration_replaces_every_recovery_code(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    with cheap.database.session() as session:
        user = session.get(User, enrolled.user_id)
        assert user is not None
        fresh = regenerate_recovery_codes(session, cheap.master, user, context=CONTEXT, now=NOW)
    assert len(fresh) == 10 and not set(fresh) & set(enrolled.recovery_codes)
    for old in enrolled.recovery_codes[:3]:
        assert not verify(cheap, enrolled.user_id, now=NOW, recovery_code=old)
    assert verify(cheap, enrolled.user_id, now=NOW, recovery_code=fresh[0])
    assert ("mfa.recovery_codes_regenerated", "success") in events_of(cheap, enrolled.user_id)
    assert_nothing_secret_in_audit(cheap, *fresh, *enrolled.recovery_codes)


def test_reset_removes_the_factor_and_its_recovery_codes(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    admin = Context(ip="198.51.100.1", actor="admin-1")
    with cheap.database.session() as session:
        user = session.get(User, enrolled.user_id)
        assert user is not None
        reset_mfa(session, user, context=admin)
    row = user_row(cheap, enrolled.user_id)
    assert (row.mfa_secret, row.mfa_pending, row.mfa_enabled_at, row.mfa_last_step) == (
        None,
        None,
        None,
        None,
    )
    with cheap.database.session(readonly=True) as session:
        assert session.scalars(select(RecoveryCode)).all() == []
    assert not verify(cheap, enrolled.user_id, now=NOW + 60, otp=enrolled.code(NOW + 60))
    assert not verify(
        cheap, enrolled.user_id, now=NOW + 60, recovery_code=enrolled.recovery_codes[0]
    )
    reset = [event for event in audit_events(cheap) if event.event == "mfa.reset"]
    assert len(reset) == 1 and reset[0].actor == "admin-1"
    assert reset[0].subject == enrolled.user_id
    # A new enrolment starts from scratch: a new secret, its own steps.
    again = start(cheap, enrolled.user_id, NOW + 60)
    assert confirm(cheap, enrolled.user_id, pyotp.TOTP(again.secret).at(NOW + 60), NOW + 60)


def test_otp_and_recovery_code_together_or_neither_are_refused(
    cheap: Provider, tenant: str
) -> None:
    enrolled = enrol(cheap, tenant)
    for fields in ({}, {"otp": "123456", "recovery_code": enrolled.recovery_codes[0]}):
        with pytest.raises(OAuthError) as caught:
            verify(cheap, enrolled.user_id, now=NOW, **fields)
        assert caught.value.error == "invalid_request"


# ---------------------------------------------------------------------- the mfa_token


def challenge_for(provider: Provider, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "tenant_id": "acme",
        "user_id": "u-1",
        "client_id": "web",
        "purpose": "verify",
        "scope": "read",
        "resource": None,
        "via": "password",
        "now": NOW,
    }
    values.update(overrides)
    return provider.challenges.issue(**values)


def test_the_mfa_token_is_an_hs256_jwt_of_its_own_type(provider: Provider) -> None:
    token = challenge_for(provider)
    header, claims = jose.jwt.decode_unverified(token)
    assert header == {"alg": "HS256", "typ": "mfa+jwt"}
    assert claims["iss"] == claims["aud"] == provider.settings.issuer
    assert claims["exp"] - claims["iat"] == TTL == 300
    assert (claims["sub"], claims["tenant"], claims["client_id"]) == ("u-1", "acme", "web")
    assert (claims["purpose"], claims["scope"], claims["auth_time"]) == ("verify", "read", NOW)
    assert provider.challenges.open(token, now=NOW + TTL - 1).user_id == "u-1"


def tampered(token: str, **changes: Any) -> str:
    header, _, signature = token.split(".")
    claims = jose.jwt.decode_unverified(token)[1]
    claims.update(changes)
    return f"{header}.{jose.b64.encode_str(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize(
    "bad",
    [
        lambda provider, token: "not a token",
        lambda provider, token: token[:-4] + "AAAA",
        lambda provider, token: tampered(token, sub="someone-else"),
        lambda provider, token: tampered(token, purpose="enrol"),
        # Another provider's (another master key's) token, and an access token of this one.
        lambda provider, token: Challenges(MasterKey(bytes(32)), provider.settings.issuer).issue(
            tenant_id="acme", user_id="u-1", client_id="web", purpose="verify", scope=None,
            resource=None, via="password", now=NOW,
        ),
        lambda provider, token: provider.issuer.issue(
            tenant_id="acme", subject="u-1", client_id="web", scope=(), audience="x", now=NOW
        ).token,
        lambda provider, token: "x" * 100_000,
    ],
    ids=["garbage", "signature", "subject", "purpose", "foreign-key", "access-token", "huge"],
)  # fmt: skip
def test_a_bad_mfa_token_is_invalid_grant(
    provider: Provider, bad: Callable[[Provider, str], str]
) -> None:
    token = bad(provider, challenge_for(provider))
    with pytest.raises(OAuthError) as caught:
        provider.challenges.open(token, now=NOW + 1)
    assert (caught.value.error, oauth_status(caught.value)) == ("invalid_grant", 400)
    assert token not in str(caught.value)


def test_an_expired_mfa_token_is_invalid_grant(provider: Provider) -> None:
    token = challenge_for(provider)
    with pytest.raises(OAuthError) as caught:
        provider.challenges.open(token, now=NOW + TTL + 1)
    assert caught.value.error == "invalid_grant"


def test_the_challenge_key_is_derived_for_its_purpose_only(provider: Provider) -> None:
    token = challenge_for(provider)
    # The master key's other derivations (here: a keyed hash of a recovery code) do not sign it.
    other = jose.Key.from_secret(bytes.fromhex(provider.master.keyed_hash(RECOVERY_PURPOSE, "x")))
    with pytest.raises(jose.InvalidSignature):
        jose.jwt.decode(token, other, algorithms=["HS256"], audience=provider.settings.issuer)


# ---------------------------------------------------------------------- login with a second factor


def password_grant(
    provider: Provider, client: Registered, username: str = "ada", **extra: str
) -> dict[str, Any]:
    form = {"grant_type": "password", "username": username, "password": PASSWORD, **extra}
    return token_response(provider, form, client.basic, CONTEXT)


def challenged(provider: Provider, client: Registered, **extra: str) -> MfaRequired:
    with pytest.raises(MfaRequired) as caught:
        password_grant(provider, client, **extra)
    return caught.value


def mfa_grant(
    provider: Provider, client: Registered, mfa_token: str, *, now: int | None = None, **fields: str
) -> Any:
    form = {"grant_type": MFA_OTP, "mfa_token": mfa_token, **fields}
    return token_response(provider, form, client.basic, CONTEXT, now=now)


def code_grant(provider: Provider, client: Registered, mfa_token: str, enrolled: Enrolled) -> Any:
    """The mfa grant with the code of the very moment the grant is judged at."""
    now = int(time.time())
    return mfa_grant(provider, client, mfa_token, otp=enrolled.code(now), now=now)


def test_a_password_login_with_a_factor_needs_the_code(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    client = first_party_client(cheap, tenant)
    error = challenged(cheap, client, scope="read write")
    body = error.as_dict()
    assert (oauth_status(error), body["error"]) == (403, "mfa_required")
    assert set(body) == {"error", "error_description", "mfa_token"}
    opened = cheap.challenges.open(body["mfa_token"])
    assert (opened.user_id, opened.client_id, opened.purpose) == (
        enrolled.user_id,
        client.id,
        "verify",
    )
    assert opened.scope == "read write"
    with cheap.database.session(readonly=True) as session:  # no token was issued
        assert not session.scalars(
            select(AuditEvent).where(AuditEvent.event == "login.succeeded")
        ).all()

    answer = code_grant(cheap, client, body["mfa_token"], enrolled)
    claims = cheap.issuer.verifier().verify(answer["access_token"])
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["auth_time"] == opened.auth_time  # the password's time
    assert claims["sub"] == enrolled.user_id and claims["scope"] == "read write"
    assert "recovery_codes" not in answer
    refreshed = token_response(
        cheap,
        {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]},
        client.basic,
        CONTEXT,
    )
    again = cheap.issuer.verifier().verify(refreshed["access_token"])
    assert (again["amr"], again["auth_time"]) == (["pwd", "otp"], opened.auth_time)
    assert events_of(cheap, enrolled.user_id)[-2:] == [
        ("mfa.challenged", "success"),
        ("mfa.verified", "success"),
    ]
    assert_nothing_secret_in_audit(cheap, body["mfa_token"], enrolled.secret, PASSWORD)


def test_a_recovery_code_completes_a_login(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    client = first_party_client(cheap, tenant)
    token = challenged(cheap, client).mfa_token
    answer = mfa_grant(cheap, client, token, recovery_code=enrolled.recovery_codes[0])
    assert cheap.issuer.verifier().verify(answer["access_token"])["amr"] == ["pwd", "otp"]
    with pytest.raises(OAuthError) as caught:
        mfa_grant(cheap, client, token, recovery_code=enrolled.recovery_codes[0])
    assert (caught.value.error, caught.value.description) == ("invalid_grant", "invalid code")


def test_a_wrong_code_is_refused_and_the_failure_kept(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    client = first_party_client(cheap, tenant)
    token = challenged(cheap, client).mfa_token
    wrong = "000000" if enrolled.code(int(time.time())) != "000000" else "111111"
    with pytest.raises(OAuthError) as caught:
        mfa_grant(cheap, client, token, otp=wrong)
    assert (caught.value.error, oauth_status(caught.value)) == ("invalid_grant", 400)
    assert events_of(cheap, enrolled.user_id)[-1] == ("mfa.failed", "failure")
    assert code_grant(cheap, client, token, enrolled)["access_token"]


def test_an_mfa_token_of_another_client_is_refused(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    client, other = first_party_client(cheap, tenant), first_party_client(cheap, tenant)
    token = challenged(cheap, client).mfa_token
    with pytest.raises(OAuthError) as caught:
        code_grant(cheap, other, token, enrolled)
    assert (caught.value.error, oauth_status(caught.value)) == ("invalid_grant", 400)
    assert "another client" in caught.value.description
    # The code was not spent by the refused attempt.
    assert code_grant(cheap, client, token, enrolled)["access_token"]


def test_the_mfa_grant_needs_a_client_allowed_the_password_grant(
    cheap: Provider, tenant: str
) -> None:
    enrolled = enrol(cheap, tenant)
    client = first_party_client(cheap, tenant)
    token = challenged(cheap, client).mfa_token
    service = add_client(cheap, tenant)  # client_credentials only
    with pytest.raises(OAuthError) as caught:
        code_grant(cheap, service, token, enrolled)
    assert caught.value.error == "unauthorized_client"


@pytest.mark.parametrize(
    "fields",
    [{}, {"otp": "123456", "recovery_code": "abcde-fghjk"}],
    ids=["neither", "both"],
)
def test_the_mfa_grant_needs_exactly_one_code(
    cheap: Provider, tenant: str, fields: dict[str, str]
) -> None:
    enrol(cheap, tenant)
    client = first_party_client(cheap, tenant)
    token = challenged(cheap, client).mfa_token
    with pytest.raises(OAuthError) as caught:
        mfa_grant(cheap, client, token, **fields)
    assert caught.value.error == "invalid_request"
    with pytest.raises(OAuthError) as missing:
        token_response(cheap, {"grant_type": MFA_OTP, "otp": "123456"}, client.basic, CONTEXT)
    assert missing.value.error == "invalid_request"


def test_an_expired_challenge_cannot_be_completed(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    client = first_party_client(cheap, tenant)
    token = challenged(cheap, client).mfa_token
    later = int(jose.jwt.decode_unverified(token)[1]["exp"]) + 1
    with cheap.database.session() as session:
        found = session.get(Client, client.id)
        assert found is not None
        with pytest.raises(OAuthError) as caught:
            pass_challenge(
                cheap,
                session,
                found,
                token,
                otp=enrolled.code(later),
                recovery_code=None,
                context=CONTEXT,
                now=later,
            )
    assert caught.value.error == "invalid_grant"


def test_a_user_disabled_after_the_password_cannot_finish(cheap: Provider, tenant: str) -> None:
    enrolled = enrol(cheap, tenant)
    client = first_party_client(cheap, tenant)
    token = challenged(cheap, client).mfa_token
    with cheap.database.session() as session:
        user = session.get(User, enrolled.user_id)
        assert user is not None
        user.status = "disabled"
    with pytest.raises(OAuthError) as caught:
        code_grant(cheap, client, token, enrolled)
    assert caught.value.error == "invalid_grant"


# ---------------------------------------------------------------------- the required policy


def require_mfa(provider: Provider, tenant: str) -> None:
    with provider.database.session() as session:
        row = session.get(Tenant, tenant)
        assert row is not None
        row.mfa_policy = "required"


def test_required_policy_sends_a_user_without_a_factor_to_enrol(
    cheap: Provider, tenant: str
) -> None:
    require_mfa(cheap, tenant)
    user = add_user(cheap, tenant, password=PASSWORD)
    client = first_party_client(cheap, tenant)
    error = challenged(cheap, client)
    assert (oauth_status(error), error.error) == (403, "mfa_enrollment_required")
    opened = cheap.challenges.open(error.mfa_token)
    assert (opened.purpose, opened.user_id) == ("enrol", user.id)
    # An enrolment token is no verification token: no code finishes the login before enrolling.
    with pytest.raises(OAuthError):
        mfa_grant(cheap, client, error.mfa_token, otp="123456")

    enrolment = start(cheap, user.id, int(time.time()))
    answer = code_grant(cheap, client, error.mfa_token, Enrolled(user.id, enrolment.secret, []))
    assert len(answer["recovery_codes"]) == 10
    claims = cheap.issuer.verifier().verify(answer["access_token"])
    assert claims["amr"] == ["pwd", "otp"] and claims["auth_time"] == opened.auth_time
    assert user_row(cheap, user.id).mfa_secret is not None
    # From now on the user logs in with the code, like anyone with a factor.
    assert challenged(cheap, client).error == "mfa_required"


def test_optional_policy_logs_a_user_without_a_factor_in_with_the_password(
    cheap: Provider, tenant: str
) -> None:
    add_user(cheap, tenant, password=PASSWORD)
    client = first_party_client(cheap, tenant)
    answer = password_grant(cheap, client)
    assert cheap.issuer.verifier().verify(answer["access_token"])["amr"] == ["pwd"]


# ---------------------------------------------------------------------- brute force


@pytest.fixture
def strict(database_url: str, tmp_path: Any, make_provider: Callable[..., Provider]) -> Provider:
    """A provider whose lockout allows 1 free failure, then delays, and locks at 3."""
    provider = make_provider(
        make_settings(database_url, tmp_path, lockout_free_attempts=1, lockout_threshold=3)
    )
    provider.use_passwords(CHEAP_PASSWORDS)
    add_tenant(provider, TENANT)
    return provider


def second_step(provider: Provider, client: Registered, token: str, code: str, now: int) -> object:
    with provider.database.session() as session:
        found = session.get(Client, client.id)
        assert found is not None
        return pass_challenge(
            provider, session, found, token, otp=code, recovery_code=None, context=CONTEXT, now=now
        )


def test_wrong_codes_count_towards_the_lockout(strict: Provider) -> None:
    enrolled = enrol(strict, TENANT)
    client = first_party_client(strict, TENANT)
    token = challenged(strict, client).mfa_token
    at = int(jose.jwt.decode_unverified(token)[1]["iat"])
    right = enrolled.code(at)
    assert isinstance(
        second_step(strict, client, token, "000000" if right != "000000" else "1" * 6, at), Refused
    )
    # Checked before the code: the next attempt must wait, and a right code is not spent by it.
    with pytest.raises(Throttled) as caught:
        second_step(strict, client, token, right, at)
    assert (oauth_status(caught.value), caught.value.retry_after) == (429, 1)
    assert events_of(strict, enrolled.user_id)[-2:] == [
        ("mfa.failed", "failure"),
        ("mfa.throttled", "failure"),
    ]
    passed = second_step(strict, client, token, right, at + 1)
    assert not isinstance(passed, Refused)


def test_enough_wrong_codes_lock_the_account(strict: Provider) -> None:
    enrolled = enrol(strict, TENANT)
    client = first_party_client(strict, TENANT)
    token = challenged(strict, client).mfa_token
    at = int(jose.jwt.decode_unverified(token)[1]["iat"])
    wrong = "000000" if enrolled.code(at) != "000000" else "111111"
    for delay in (0, 1, 3):  # 1 free failure, then 2 ** (n - 1) s after the last
        assert isinstance(second_step(strict, client, token, wrong, at + delay), Refused)
    assert user_row(strict, enrolled.user_id).status == "locked"
    assert ("user.locked", "success") in [
        (event.event, event.outcome) for event in audit_events(strict)
    ]
    with pytest.raises(Throttled):  # the right code does not open a locked account
        second_step(strict, client, token, enrolled.code(at + 3), at + 3)
