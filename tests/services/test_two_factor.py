"""Two-step sign-in (authenticator codes, recovery codes) and the Devices list, on both
databases. Codes are computed with pyotp from the secret, at the frozen clock's time, as
the person's app would."""

from __future__ import annotations

import functools
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlmodel import Session, func, select

from iris_reflex.db import engine_for
from iris_reflex.errors import (
    Conflict,
    Invalid,
    NotAuthenticated,
    NotFound,
    SecondFactorRequired,
    Throttled,
)
from iris_reflex.models import LoginFailure, RecoveryCode, TotpSecret, User, UserSession
from iris_reflex.services import accounts, auth, passwords, two_factor
from iris_reflex.settings import get_settings

PASSWORD = "correct horse battery"
IP = "198.51.100.7"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Mobile Safari/537.36"
)


@functools.cache
def password_hash() -> str:
    return passwords.hash_password(PASSWORD)


@pytest.fixture
def now(frozen_clock):
    """The frozen clock at the real time (whole seconds), so PyJWT accepts the tokens."""
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    return frozen_clock


def make_user(session: Session, username: str = "ada") -> User:
    user = User(
        username=username,
        username_key=username.casefold(),
        display_name=username,
        password_hash=password_hash(),
        created_at=datetime.now(UTC),
    )
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def enrolled(session: Session, user: User, now) -> tuple[str, list[str]]:
    """Two-step sign-in turned on for ``user``; returns the secret and recovery codes. The
    clock moves one step on, so the confirming code is not the next one expected."""
    assert user.id is not None
    enrolment = two_factor.begin_enrolment(session, actor_id=user.id)
    codes = two_factor.confirm_enrolment(
        session, actor_id=user.id, code=code_at(enrolment.secret, now.current)
    )
    now.advance(seconds=30)
    return enrolment.secret, codes


def challenge_for(session: Session, username: str = "ada") -> str:
    with pytest.raises(SecondFactorRequired) as raised:
        auth.login(session, username=username, password=PASSWORD, ip=IP)
    return raised.value.challenge


def count(session: Session, model: type, *where: object) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


# ------------------------------------------------------------------------------ enrolment


def test_enrolment_gives_an_otpauth_uri_with_issuer_and_username_and_a_qr_code(session, now):
    user = make_user(session)
    enrolment = two_factor.begin_enrolment(session, actor_id=user.id)
    parsed = urllib.parse.urlparse(enrolment.uri)
    query = urllib.parse.parse_qs(parsed.query)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert urllib.parse.unquote(parsed.path) == "/Iris:ada"
    assert query["issuer"] == ["Iris"] and query["secret"] == [enrolment.secret]
    assert len(enrolment.secret) == 32
    assert enrolment.qr_svg.startswith("data:image/svg+xml")
    # Not on until confirmed: signing in still needs only the password.
    assert not two_factor.is_enabled(session, user.id)
    assert auth.login(session, username="ada", password=PASSWORD, ip=IP).token


def test_a_wrong_code_does_not_turn_it_on(session, now):
    user = make_user(session)
    enrolment = two_factor.begin_enrolment(session, actor_id=user.id)
    wrong = code_at(enrolment.secret, now.current + timedelta(minutes=5))
    with pytest.raises(Invalid):
        two_factor.confirm_enrolment(session, actor_id=user.id, code=wrong)
    assert not two_factor.is_enabled(session, user.id)
    assert count(session, RecoveryCode) == 0


def test_confirming_turns_it_on_with_ten_distinct_recovery_codes_stored_hashed(session, now):
    user = make_user(session)
    _, codes = enrolled(session, user, now)
    assert two_factor.is_enabled(session, user.id)
    assert len(set(codes)) == 10
    stored = {row.code_hash for row in session.exec(select(RecoveryCode)).all()}
    assert len(stored) == 10 and not stored & set(codes)
    assert two_factor.status(session, actor_id=user.id) == two_factor.Status(True, 10)


def test_enrolling_again_while_on_is_refused(session, now):
    user = make_user(session)
    enrolled(session, user, now)
    with pytest.raises(Conflict):
        two_factor.begin_enrolment(session, actor_id=user.id)


def test_a_cancelled_enrolment_leaves_nothing_behind(session, now):
    user = make_user(session)
    enrolment = two_factor.begin_enrolment(session, actor_id=user.id)
    two_factor.cancel_enrolment(session, actor_id=user.id)
    assert count(session, TotpSecret) == 0
    with pytest.raises(Invalid):
        two_factor.confirm_enrolment(
            session, actor_id=user.id, code=code_at(enrolment.secret, now.current)
        )


# -------------------------------------------------------------------------------- codes


def test_a_code_is_accepted_once(session, now):
    user = make_user(session)
    secret, _ = enrolled(session, user, now)
    code = code_at(secret, now.current)
    assert two_factor.consume_code(session, user_id=user.id, code=code, now=now.current)
    session.commit()
    assert not two_factor.consume_code(session, user_id=user.id, code=code, now=now.current)


def test_one_step_of_drift_either_way_is_allowed_and_two_are_not(session, now):
    user = make_user(session)
    secret, _ = enrolled(session, user, now)
    now.advance(seconds=60)
    t = now.current
    assert not two_factor.consume_code(
        session, user_id=user.id, code=code_at(secret, t - timedelta(seconds=60)), now=t
    )
    assert not two_factor.consume_code(
        session, user_id=user.id, code=code_at(secret, t + timedelta(seconds=60)), now=t
    )
    assert two_factor.consume_code(
        session, user_id=user.id, code=code_at(secret, t - timedelta(seconds=30)), now=t
    )
    assert two_factor.consume_code(
        session, user_id=user.id, code=code_at(secret, t + timedelta(seconds=30)), now=t
    )


def test_an_older_step_is_refused_after_a_newer_one_was_used(session, now):
    user = make_user(session)
    secret, _ = enrolled(session, user, now)
    t = now.current
    assert two_factor.consume_code(
        session, user_id=user.id, code=code_at(secret, t + timedelta(seconds=30)), now=t
    )
    assert not two_factor.consume_code(session, user_id=user.id, code=code_at(secret, t), now=t)


def test_a_recovery_code_works_once_in_any_case_and_spacing(session, now):
    user = make_user(session)
    _, codes = enrolled(session, user, now)
    typed = " " + codes[0].upper().replace("-", " ") + " "
    assert two_factor.consume_code(session, user_id=user.id, code=typed, now=now.current)
    session.commit()
    assert not two_factor.consume_code(session, user_id=user.id, code=codes[0], now=now.current)
    assert two_factor.status(session, actor_id=user.id).recovery_codes_left == 9


def test_codes_of_someone_else_do_not_pass(session, now):
    ada, bob = make_user(session, "ada"), make_user(session, "bob")
    _, ada_codes = enrolled(session, ada, now)
    bob_secret, _ = enrolled(session, bob, now)
    t = now.current
    assert not two_factor.consume_code(session, user_id=bob.id, code=ada_codes[0], now=t)
    assert not two_factor.consume_code(session, user_id=ada.id, code=code_at(bob_secret, t), now=t)


# ------------------------------------------------------------------------------- login


def test_a_correct_password_opens_no_session_when_two_step_is_on(session, now):
    user = make_user(session)
    enrolled(session, user, now)
    with pytest.raises(SecondFactorRequired) as raised:
        auth.login(session, username="ada", password=PASSWORD, ip=IP)
    assert raised.value.expires_in == 300
    assert raised.value.methods == ("totp", "recovery_code")
    assert count(session, UserSession) == 0
    # The challenge is no session token.
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, raised.value.challenge)


def test_the_second_step_opens_a_session_with_the_device_described(session, now):
    user = make_user(session)
    secret, _ = enrolled(session, user, now)
    challenge = challenge_for(session)
    signed = auth.finish_login(
        session, challenge=challenge, code=code_at(secret, now.current), ip=IP, user_agent=FIREFOX
    )
    assert auth.authenticate(session, signed.token).user_id == user.id
    session.expire_all()
    assert session.get(UserSession, signed.session_id).device == "Firefox on Linux"
    assert count(session, LoginFailure) == 0  # the pair's attempts are cleared


def test_a_recovery_code_passes_the_second_step(session, now):
    user = make_user(session)
    _, codes = enrolled(session, user, now)
    signed = auth.finish_login(session, challenge=challenge_for(session), code=codes[3], ip=IP)
    assert auth.authenticate(session, signed.token).user_id == user.id


def test_a_challenge_opens_one_session_only(session, now):
    user = make_user(session)
    _, codes = enrolled(session, user, now)
    challenge = challenge_for(session)
    auth.finish_login(session, challenge=challenge, code=codes[0], ip=IP)
    with pytest.raises(NotAuthenticated, match="took too long"):
        auth.finish_login(session, challenge=challenge, code=codes[1], ip=IP)
    assert count(session, UserSession) == 1
    # The refused use did not spend the second recovery code.
    assert two_factor.status(session, actor_id=user.id).recovery_codes_left == 9


def test_concurrent_uses_of_one_challenge_open_one_session(session, now, database_url):
    user = make_user(session)
    _, codes = enrolled(session, user, now)
    challenge = challenge_for(session)
    engine = engine_for(database_url)

    def attempt(code: str) -> bool:
        with Session(engine, expire_on_commit=False) as own:
            try:
                auth.finish_login(own, challenge=challenge, code=code, ip=IP)
            except NotAuthenticated:
                return False
            return True

    # Two, so the pair's free attempts (the password round was one) are not the limit.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(attempt, codes[:2]))
    assert results.count(True) == 1
    assert count(session, UserSession) == 1


def test_a_challenge_expires_after_five_minutes(session, frozen_clock):
    # Issued in the past, so PyJWT's own clock accepts the ``iat``; the app clock decides exp.
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    user = make_user(session)
    _, codes = enrolled(session, user, frozen_clock)
    challenge = challenge_for(session)
    frozen_clock.advance(seconds=299)
    still = challenge_for(session)
    frozen_clock.advance(seconds=1)  # the first challenge is now 300 s old
    with pytest.raises(NotAuthenticated, match="took too long"):
        auth.finish_login(session, challenge=challenge, code=codes[0], ip=IP)
    assert auth.finish_login(session, challenge=still, code=codes[0], ip=IP).token


def test_a_session_token_or_handoff_is_no_challenge(session, now):
    make_user(session, "bob")
    signed = auth.login(session, username="bob", password=PASSWORD, ip=IP)
    handoff = auth.issue_handoff(auth.Identity(signed.user.id, signed.session_id))
    for token in (signed.token, handoff, "garbage"):
        with pytest.raises(NotAuthenticated, match="took too long"):
            auth.finish_login(session, challenge=token, code="123456", ip=IP)


def test_wrong_codes_are_throttled_like_passwords(session, now, monkeypatch):
    settings = get_settings()
    monkeypatch.setattr(settings, "login_free_attempts", 3)
    monkeypatch.setattr(settings, "login_base_delay_seconds", 4)
    user = make_user(session)
    secret, _ = enrolled(session, user, now)
    challenge = challenge_for(session)  # the password attempt stays counted: 1
    for _ in range(2):  # 2, 3
        with pytest.raises(NotAuthenticated, match="not correct"):
            auth.finish_login(session, challenge=challenge, code="000000", ip=IP)
    right = code_at(secret, now.current)
    with pytest.raises(Throttled) as raised:
        auth.finish_login(session, challenge=challenge, code=right, ip=IP)
    assert raised.value.retry_after == 4
    # A fresh password round buys no free guesses either.
    with pytest.raises(Throttled):
        auth.login(session, username="ada", password=PASSWORD, ip=IP)
    now.advance(seconds=4)
    assert auth.finish_login(session, challenge=challenge, code=right, ip=IP).token


def test_turning_it_off_after_enrolment_between_steps_refuses_the_code(session, now):
    user = make_user(session)
    _, codes = enrolled(session, user, now)
    challenge = challenge_for(session)
    accounts.turn_off_two_factor(session, actor_id=user.id, password=PASSWORD, ip=IP)
    with pytest.raises(NotAuthenticated, match="not correct"):
        auth.finish_login(session, challenge=challenge, code=codes[0], ip=IP)


# -------------------------------------------------------------------- off, regenerate


def test_turning_it_off_needs_the_password_or_a_current_code(session, now):
    user = make_user(session)
    secret, _ = enrolled(session, user, now)
    with pytest.raises(Invalid):
        accounts.turn_off_two_factor(session, actor_id=user.id, password="nope nope", ip=IP)
    with pytest.raises(Invalid):
        accounts.turn_off_two_factor(session, actor_id=user.id, code="000000", ip=IP)
    assert two_factor.is_enabled(session, user.id)
    assert count(session, LoginFailure) == 2  # counted like wrong passwords
    accounts.turn_off_two_factor(
        session, actor_id=user.id, code=code_at(secret, now.current), ip=IP
    )
    assert not two_factor.is_enabled(session, user.id)
    assert count(session, RecoveryCode) == 0 and count(session, TotpSecret) == 0
    assert auth.login(session, username="ada", password=PASSWORD, ip=IP).token


def test_regenerating_replaces_every_recovery_code(session, now):
    user = make_user(session)
    _, old = enrolled(session, user, now)
    two_factor.consume_code(session, user_id=user.id, code=old[0], now=now.current)
    session.commit()
    new = accounts.regenerate_recovery_codes(session, actor_id=user.id, password=PASSWORD, ip=IP)
    assert len(set(new)) == 10 and not set(new) & set(old)
    assert two_factor.status(session, actor_id=user.id).recovery_codes_left == 10
    assert not two_factor.consume_code(session, user_id=user.id, code=old[1], now=now.current)
    assert two_factor.consume_code(session, user_id=user.id, code=new[1], now=now.current)


def test_regenerating_needs_it_on_and_the_password(session, now):
    user = make_user(session)
    with pytest.raises(Invalid, match="not on"):
        accounts.regenerate_recovery_codes(session, actor_id=user.id, password=PASSWORD, ip=IP)
    enrolled(session, user, now)
    with pytest.raises(Invalid, match="not correct"):
        accounts.regenerate_recovery_codes(session, actor_id=user.id, password="x" * 9, ip=IP)


def test_deleting_the_account_deletes_its_secret_and_codes(session, now, uploads):
    user = make_user(session)
    enrolled(session, user, now)
    accounts.delete_account(session, actor_id=user.id, password=PASSWORD, ip=IP)
    assert count(session, TotpSecret) == 0 and count(session, RecoveryCode) == 0


# ----------------------------------------------------------------------------- devices


def test_devices_lists_live_sessions_current_first_with_their_browsers(session, now):
    make_user(session)
    phone = auth.login(session, username="ada", password=PASSWORD, ip=IP, user_agent=CHROME_ANDROID)
    now.advance(seconds=1)
    laptop = auth.login(session, username="ada", password=PASSWORD, ip=IP, user_agent=FIREFOX)
    ended = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    auth.logout(session, auth.Identity(ended.user.id, ended.session_id))
    identity = auth.Identity(phone.user.id, phone.session_id)
    devices = auth.list_devices(session, identity)
    assert [(d.description, d.current) for d in devices] == [
        ("Chrome on Android", True),
        ("Firefox on Linux", False),
    ]
    assert devices[1].handle == auth.device_handle(laptop.session_id)
    assert laptop.session_id not in {d.handle for d in devices}
    assert devices[1].created_at == now.current


def test_signing_out_a_device_ends_that_session_only(session, now):
    make_user(session)
    mine = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    other = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    identity = auth.Identity(mine.user.id, mine.session_id)
    ended = accounts.sign_out_device(session, identity, handle=auth.device_handle(other.session_id))
    assert ended == other.session_id
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, other.token)
    assert auth.authenticate(session, mine.token).session_id == mine.session_id
    with pytest.raises(NotFound):  # already ended
        accounts.sign_out_device(session, identity, handle=auth.device_handle(other.session_id))


def test_nobody_signs_out_someone_elses_device(session, now):
    make_user(session, "ada")
    make_user(session, "bob")
    ada = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    bob = auth.login(session, username="bob", password=PASSWORD, ip=IP)
    for handle in (auth.device_handle(bob.session_id), bob.session_id, "ü" * 5, ""):
        with pytest.raises(NotFound):
            accounts.sign_out_device(
                session, auth.Identity(ada.user.id, ada.session_id), handle=handle
            )
    assert auth.authenticate(session, bob.token).user_id == bob.user.id


def test_last_active_is_written_at_most_every_five_minutes(session, frozen_clock):
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    make_user(session)
    signed = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    opened = frozen_clock.current

    def last_active() -> datetime | None:
        session.expire_all()
        return session.get(UserSession, signed.session_id).last_active_at

    assert last_active() == opened
    frozen_clock.advance(minutes=4, seconds=59)
    auth.authenticate(session, signed.token)
    assert last_active() == opened
    frozen_clock.advance(seconds=1)
    auth.authenticate(session, signed.token)
    assert last_active() == frozen_clock.current


@pytest.mark.parametrize(
    ("agent", "described"),
    [
        (FIREFOX, "Firefox on Linux"),
        (CHROME_ANDROID, "Chrome on Android"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.28.1", "python-httpx"),
        ("", "Unknown device"),
        ("x" * 500, "x" * 80),
    ],
)
def test_a_user_agent_is_described_briefly(agent, described):
    assert auth.describe_device(agent) == described


@pytest.mark.parametrize("code", ["", " ", "\ud800" * 6, "x" * 65, "12345", "1234567", "abcdef"])
def test_nonsense_codes_pass_nothing_and_break_nothing(session, now, code):
    user = make_user(session)
    enrolled(session, user, now)
    assert not two_factor.consume_code(session, user_id=user.id, code=code, now=now.current)
