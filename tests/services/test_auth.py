"""Sign-in, throttling, tokens, sessions, handoffs and housekeeping.

About time: the services read ``iris_reflex.clock`` (frozen here), but PyJWT checks ``exp``
and ``iat`` against the real clock. The conftest clock starts on a fixed date that may lie in
the real past, where every token it issues is already expired for PyJWT; so the ``now``
fixture sets the frozen clock to the real time (whole seconds) before anything is issued.
A token issued after moving the clock ahead of real time has an ``iat`` in the future and is
refused by PyJWT, so tests that need a working token after time travel start in the past.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlmodel import Session, func, select

from iris_reflex.db import engine_for
from iris_reflex.errors import NotAuthenticated, Throttled
from iris_reflex.models import LoginFailure, UsedHandoff, User, UserSession
from iris_reflex.services import auth, passwords
from iris_reflex.settings import get_settings

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"
IP = "198.51.100.7"
OTHER_IP = "203.0.113.9"


@functools.cache
def password_hash() -> str:
    """One argon2 hash of ``PASSWORD`` for the whole module (registration is tested elsewhere)."""
    return passwords.hash_password(PASSWORD)


@pytest.fixture
def now(frozen_clock):
    """The frozen clock, set to the real time so PyJWT accepts what the services issue."""
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    return frozen_clock


def make_user(session: Session, username: str) -> User:
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


def count(session: Session, model: type, *where: object) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def failures(session: Session) -> list[tuple[str, str]]:
    session.expire_all()
    rows = session.exec(select(LoginFailure).order_by(LoginFailure.id)).all()
    return [(row.username_key, row.ip) for row in rows]


def session_row(session: Session, session_id: str) -> UserSession | None:
    session.expire_all()
    return session.get(UserSession, session_id)


def secret() -> str:
    return get_settings().resolved_jwt_secret()


def window() -> timedelta:
    return timedelta(minutes=get_settings().login_window_minutes)


def lifetime() -> timedelta:
    return timedelta(minutes=get_settings().jwt_lifetime_minutes)


def claims_of(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def sign(claims: dict[str, object], key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret() if key is None else key, algorithm=algorithm)


def real_timestamp(**delta: float) -> int:
    return int((datetime.now(UTC) + timedelta(**delta)).timestamp())


def fail(session: Session, username: str = "ada", ip: str = IP) -> NotAuthenticated:
    with pytest.raises(NotAuthenticated) as caught:
        auth.login(session, username=username, password=WRONG, ip=ip)
    return caught.value


def throttled(session: Session, username: str = "ada", ip: str = IP) -> Throttled:
    """A login with the *right* password that is refused anyway."""
    with pytest.raises(Throttled) as caught:
        auth.login(session, username=username, password=PASSWORD, ip=ip)
    return caught.value


def assert_refused(session: Session, token: str | None) -> None:
    with pytest.raises(NotAuthenticated) as caught:
        auth.authenticate(session, token)
    assert caught.value.message == auth.SESSION_ENDED


# --- login ------------------------------------------------------------------------------------


def test_login_with_the_right_password_opens_a_session_whose_token_authenticates(session, now):
    ada = make_user(session, "Ada")

    signed = auth.login(session, username="Ada", password=PASSWORD, ip=IP)

    assert signed.user.id == ada.id
    assert signed.expires_at == now.current + lifetime()
    row = session_row(session, signed.session_id)
    assert row is not None
    assert (row.user_id, row.created_at, row.expires_at, row.revoked_at) == (
        ada.id,
        now.current,
        now.current + lifetime(),
        None,
    )
    assert claims_of(signed.token) == {
        "iss": "iris",
        "aud": "iris:session",
        "sub": str(ada.id),
        "sid": signed.session_id,
        "iat": int(now.current.timestamp()),
        "exp": int((now.current + lifetime()).timestamp()),
    }
    assert jwt.get_unverified_header(signed.token)["alg"] == "HS256"
    assert auth.authenticate(session, signed.token) == auth.Identity(ada.id, signed.session_id)
    assert auth.signed_in_user(session, signed.token)[1].id == ada.id


def test_a_session_opened_for_a_proven_user_is_a_login_without_the_password(session, now):
    ada = make_user(session, "Ada")

    signed = auth.open_session(session, ada)

    session.rollback()  # committed: another session sees it
    row = session_row(session, signed.session_id)
    assert row is not None and (row.user_id, row.expires_at) == (ada.id, now.current + lifetime())
    assert claims_of(signed.token)["sid"] == signed.session_id
    assert auth.authenticate(session, signed.token) == auth.Identity(ada.id, signed.session_id)


def test_login_accepts_the_username_in_any_case_and_with_surrounding_spaces(session, now):
    ada = make_user(session, "Ada")

    for typed in ("ada", "ADA", "  aDa "):
        signed = auth.login(session, username=typed, password=PASSWORD, ip=IP)
        assert signed.user.id == ada.id

    assert count(session, UserSession) == 3
    assert failures(session) == []


def test_each_login_opens_its_own_session(session, now):
    ada = make_user(session, "ada")

    first = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    second = auth.login(session, username="ada", password=PASSWORD, ip=OTHER_IP)

    assert first.session_id != second.session_id
    assert auth.authenticate(session, first.token).session_id == first.session_id
    assert auth.authenticate(session, second.token).session_id == second.session_id
    assert count(session, UserSession, UserSession.user_id == ada.id) == 2


def test_wrong_password_and_unknown_user_give_the_same_message_and_open_no_session(session, now):
    make_user(session, "Ada")

    wrong_password = fail(session, "Ada")
    unknown_user = fail(session, "Nobody")

    assert wrong_password.message == unknown_user.message == auth.WRONG_CREDENTIALS
    assert type(wrong_password) is type(unknown_user) is NotAuthenticated
    assert count(session, UserSession) == 0
    assert failures(session) == [("ada", IP), ("nobody", IP)]


def test_the_password_is_case_sensitive(session, now):
    make_user(session, "ada")

    with pytest.raises(NotAuthenticated):
        auth.login(session, username="ada", password=PASSWORD.upper(), ip=IP)

    assert count(session, UserSession) == 0
    assert failures(session) == [("ada", IP)]


def test_a_failure_from_an_empty_address_is_counted_as_unknown(session, now):
    fail(session, "ada", ip="")

    assert failures(session) == [("ada", "unknown")]


def test_an_overlong_password_at_login_is_a_wrong_password(session, now):
    make_user(session, "ada")

    with pytest.raises(NotAuthenticated) as caught:
        auth.login(session, username="ada", password="x" * 4097, ip=IP)

    assert caught.value.message == auth.WRONG_CREDENTIALS
    assert count(session, UserSession) == 0
    assert failures(session) == [("ada", IP)]


# --- throttling -------------------------------------------------------------------------------
# The pair (address, username) slows down first; wider counts only take away the free
# attempts. Nothing refuses the first attempt of a pair, so nobody can be locked out.


def settings_for_throttling(monkeypatch: pytest.MonkeyPatch, **values: int) -> None:
    defaults = {
        "login_free_attempts": 3,
        "login_base_delay_seconds": 2,
        "login_max_delay_seconds": 300,
        "login_max_failures": 10,
        "login_max_failures_per_ip": 100,
    }
    for name, value in {**defaults, **values}.items():
        monkeypatch.setattr(get_settings(), name, value)


def signs_in(session: Session, username: str = "ada", ip: str = IP) -> bool:
    return auth.login(session, username=username, password=PASSWORD, ip=ip).user.username == (
        username
    )


def test_the_free_attempts_are_not_slowed_then_the_pair_must_wait(session, now, monkeypatch):
    settings_for_throttling(monkeypatch)
    make_user(session, "ada")
    for _ in range(3):
        fail(session, "ada")

    refused = throttled(session, "ada")

    assert refused.retry_after == 2
    assert refused.message == "Too many failed sign-in attempts. Try again in 2 seconds."
    assert count(session, UserSession) == 0
    # An early attempt is refused before the password is checked and is not counted.
    assert count(session, LoginFailure) == 3


def test_the_wait_doubles_with_each_failure_and_waiting_it_is_enough(session, now, monkeypatch):
    settings_for_throttling(monkeypatch)
    make_user(session, "ada")
    for _ in range(3):
        fail(session, "ada")
    waits = []
    for _ in range(4):
        waits.append(throttled(session, "ada").retry_after)
        now.advance(seconds=waits[-1] - 1)
        assert throttled(session, "ada").retry_after == 1
        now.advance(seconds=1)
        fail(session, "ada")

    assert waits == [2, 4, 8, 16]
    now.advance(seconds=throttled(session, "ada").retry_after)
    assert signs_in(session, "ada")


def test_guesses_sent_in_parallel_get_no_more_free_attempts(
    database_url, session, now, monkeypatch
):
    """Each attempt is counted before its password is checked, one pair at a time: a burst
    of ten wrong guesses at once reaches the password check only ``free`` times."""
    settings_for_throttling(monkeypatch)
    make_user(session, "ada")
    engine = engine_for(database_url)
    start = threading.Barrier(10)
    outcomes: list[str] = []

    def guess() -> None:
        with Session(engine, expire_on_commit=False) as own:
            start.wait()
            try:
                auth.login(own, username="ada", password=WRONG, ip=IP)
            except NotAuthenticated:
                outcomes.append("checked")
            except Throttled:
                outcomes.append("throttled")

    workers = [threading.Thread(target=guess) for _ in range(10)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sorted(outcomes) == ["checked"] * 3 + ["throttled"] * 7
    assert count(session, LoginFailure) == 3


def test_the_wait_never_passes_the_configured_maximum(session, now, monkeypatch):
    settings_for_throttling(monkeypatch, login_free_attempts=1, login_max_delay_seconds=5)
    make_user(session, "ada")
    fail(session, "ada")
    for _ in range(4):
        now.advance(seconds=throttled(session, "ada").retry_after)
        fail(session, "ada")

    assert throttled(session, "ada").retry_after == 5


def test_the_username_is_checked_in_any_letter_case_and_spacing(session, now, monkeypatch):
    settings_for_throttling(monkeypatch, login_free_attempts=2)
    make_user(session, "ada")
    fail(session, "ADA")
    fail(session, " Ada ")

    assert throttled(session, "ada").retry_after == 2


def test_many_failures_from_one_address_do_not_lock_out_others_behind_it(session, now, monkeypatch):
    """A campus NAT: one person guesses a lot; everyone else there still signs in at once."""
    settings_for_throttling(monkeypatch, login_max_failures_per_ip=30)
    make_user(session, "ada")
    make_user(session, "bob")
    for i in range(40):
        fail(session, f"guess{i}", IP)

    assert signs_in(session, "bob", IP)
    # Someone there who mistypes is slowed down (that address is over its limit), not shut out.
    fail(session, "ada", IP)
    now.advance(seconds=throttled(session, "ada", IP).retry_after)
    assert signs_in(session, "ada", IP)


def test_many_failures_for_one_username_do_not_lock_its_owner_out(session, now, monkeypatch):
    """Anyone can type a chosen username: failures from elsewhere do not stop its owner."""
    settings_for_throttling(monkeypatch, login_max_failures=5)
    make_user(session, "ada")
    for i in range(20):
        fail(session, "ada", ip=f"192.0.2.{i}")

    assert signs_in(session, "ada", OTHER_IP)


def test_a_username_over_its_limit_paces_every_address_from_the_first_failure(
    session, now, monkeypatch
):
    settings_for_throttling(monkeypatch, login_max_failures=4)
    make_user(session, "ada")
    assert not auth.username_is_guarded(session, key="ada", now=now.current)
    for i in range(4):
        fail(session, "ada", ip=f"192.0.2.{i}")
    assert auth.username_is_guarded(session, key="ada", now=now.current)

    # A new address still gets its first attempt, but no free ones after a failure.
    fail(session, "ada", OTHER_IP)
    assert throttled(session, "ada", OTHER_IP).retry_after == 2
    # Another username from the same address is not paced: it is not over its limit.
    make_user(session, "bob")
    fail(session, "bob", OTHER_IP)
    assert signs_in(session, "bob", OTHER_IP)
    # The right password in an allowed attempt passes the username's limit.
    assert signs_in(session, "ada", "192.0.2.200")


def test_an_address_over_its_limit_paces_its_pairs_from_the_first_failure(
    session, now, monkeypatch
):
    """One address spraying many accounts loses its free attempts on each of them."""
    settings_for_throttling(monkeypatch, login_max_failures_per_ip=5)
    make_user(session, "ada")
    for i in range(5):
        fail(session, f"guess{i}", IP)

    fail(session, "ada", IP)
    assert throttled(session, "ada", IP).retry_after == 2
    # Elsewhere ada keeps her free attempts.
    fail(session, "ada", OTHER_IP)
    fail(session, "ada", OTHER_IP)
    assert signs_in(session, "ada", OTHER_IP)


def test_a_success_clears_only_that_pairs_failures(session, now, monkeypatch):
    settings_for_throttling(monkeypatch)
    make_user(session, "ada")
    fail(session, "ada", IP)
    fail(session, "ada", OTHER_IP)
    fail(session, "bob", IP)

    assert signs_in(session, "ada", IP)

    assert failures(session) == [("ada", OTHER_IP), ("bob", IP)]


def test_failures_that_left_the_window_no_longer_slow_the_pair(session, now, monkeypatch):
    settings_for_throttling(monkeypatch, login_free_attempts=1, login_max_delay_seconds=3600)
    make_user(session, "ada")
    fail(session, "ada")
    for _ in range(8):
        now.advance(seconds=throttled(session, "ada").retry_after)
        fail(session, "ada")
    assert throttled(session, "ada").retry_after > 60

    now.advance(seconds=window().total_seconds())

    assert signs_in(session, "ada")


# --- tokens -----------------------------------------------------------------------------------


@pytest.fixture
def signed(session, now) -> auth.SignedIn:
    make_user(session, "ada")
    return auth.login(session, username="ada", password=PASSWORD, ip=IP)


@pytest.mark.parametrize("token", [None, ""])
def test_authenticate_refuses_a_missing_token(session, token):
    assert_refused(session, token)


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "Bearer x", "eyJhbGciOiJIUzI1NiJ9..", "🙂" * 10],
)
def test_authenticate_refuses_garbage(session, token):
    assert_refused(session, token)


def test_authenticate_accepts_a_rebuilt_token_so_the_refusals_below_are_meaningful(session, signed):
    """Control: the claims of a real token, signed again with the app's secret, work."""
    assert auth.authenticate(session, sign(claims_of(signed.token))).session_id == (
        signed.session_id
    )


def test_authenticate_refuses_a_token_signed_with_another_secret(session, signed):
    forged = sign(claims_of(signed.token), key="another-secret-" + "y" * 40)

    assert_refused(session, forged)


def test_authenticate_refuses_an_unsigned_alg_none_token(session, signed):
    forged = jwt.encode(claims_of(signed.token), None, algorithm="none")
    assert jwt.get_unverified_header(forged)["alg"] == "none"

    assert_refused(session, forged)
    # Also with the original signature glued back on.
    assert_refused(session, forged + signed.token.rsplit(".", 1)[1])


def test_authenticate_refuses_an_algorithm_outside_the_allowlist(session, signed):
    assert_refused(session, sign(claims_of(signed.token), algorithm="HS384"))


def _with_payload(token: str, claims: dict[str, object]) -> str:
    header, _payload, signature = token.split(".")
    payload = (
        base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
        .rstrip(b"=")
        .decode()
    )
    return f"{header}.{payload}.{signature}"


def test_authenticate_refuses_a_token_whose_payload_was_modified(session, signed, now):
    bob = make_user(session, "bob")
    bob_session = auth.login(session, username="bob", password=PASSWORD, ip=IP)
    claims = claims_of(signed.token)

    later = {**claims, "exp": claims["exp"] + 3600}
    as_bob = {**claims, "sub": str(bob.id), "sid": bob_session.session_id}

    assert _with_payload(signed.token, claims) == signed.token  # the splice itself is faithful
    assert_refused(session, _with_payload(signed.token, later))
    assert_refused(session, _with_payload(signed.token, as_bob))


def test_authenticate_refuses_an_expired_token(session, signed):
    claims = claims_of(signed.token)
    expired = sign({**claims, "iat": real_timestamp(hours=-2), "exp": real_timestamp(seconds=-5)})

    assert_refused(session, expired)
    # The session itself is still live: only the token's expiry refused it.
    assert auth.authenticate(session, signed.token).session_id == signed.session_id


def test_authenticate_refuses_a_token_issued_in_the_future(session, signed):
    claims = claims_of(signed.token)
    future = sign({**claims, "iat": real_timestamp(hours=1), "exp": real_timestamp(hours=2)})

    assert_refused(session, future)


def test_authenticate_refuses_a_session_past_its_expiry_even_if_the_token_is_not(
    session, signed, now
):
    now.advance(seconds=lifetime().total_seconds() - 1)
    assert auth.authenticate(session, signed.token).session_id == signed.session_id

    now.advance(seconds=1)

    assert_refused(session, signed.token)


def test_authenticate_refuses_a_correctly_signed_token_with_a_bad_claim(session, signed):
    """Right secret, but one claim missing or wrong: every case is the same refusal."""
    claims = claims_of(signed.token)
    variants: list[dict[str, object]] = [
        {k: v for k, v in claims.items() if k != missing}
        for missing in ("exp", "iat", "sub", "sid", "aud", "iss")
    ]
    variants += [
        {**claims, "iss": "not-iris"},
        {**claims, "aud": "iris:web-handoff"},
        {**claims, "aud": "somebody-else"},
        {**claims, "sub": "not-a-number"},
        {**claims, "sub": str(signed.user.id + 1)},  # another user, this user's session
        {**claims, "sid": "no-such-session"},
    ]
    for variant in variants:
        assert_refused(session, sign(variant))


def test_authenticate_refuses_a_handoff_token(session, signed):
    identity = auth.authenticate(session, signed.token)

    assert_refused(session, auth.issue_handoff(identity))


def test_authenticate_refuses_the_token_of_a_revoked_session(session, signed):
    auth.logout(session, auth.authenticate(session, signed.token))

    assert_refused(session, signed.token)
    with pytest.raises(NotAuthenticated):
        auth.signed_in_user(session, signed.token)


def test_authenticate_refuses_the_token_of_a_deleted_account(session, signed):
    session.delete(session.get(User, signed.user.id))
    session.commit()

    assert_refused(session, signed.token)
    assert count(session, UserSession) == 0


# --- logout and revocation --------------------------------------------------------------------


def test_logout_revokes_only_that_session(session, now):
    make_user(session, "ada")
    phone = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    laptop = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    now.advance(minutes=5)

    auth.logout(session, auth.authenticate(session, phone.token))

    assert_refused(session, phone.token)
    assert auth.authenticate(session, laptop.token).session_id == laptop.session_id
    phone_row = session_row(session, phone.session_id)
    laptop_row = session_row(session, laptop.session_id)
    assert phone_row is not None and phone_row.revoked_at == now.current
    assert laptop_row is not None and laptop_row.revoked_at is None


def test_logout_twice_keeps_the_first_revocation_time(session, signed, now):
    identity = auth.authenticate(session, signed.token)
    auth.logout(session, identity)
    revoked_at = now.current
    now.advance(minutes=10)

    auth.logout(session, identity)

    row = session_row(session, signed.session_id)
    assert row is not None and row.revoked_at == revoked_at
    assert_refused(session, signed.token)


def test_revoke_sessions_ends_every_session_of_that_user_only(session, now):
    ada = make_user(session, "ada")
    make_user(session, "bob")
    ada_tokens = [auth.login(session, username="ada", password=PASSWORD, ip=IP) for _ in "12"]
    bob = auth.login(session, username="bob", password=PASSWORD, ip=IP)

    assert auth.revoke_sessions(session, user_id=ada.id) == 2

    for signed in ada_tokens:
        assert_refused(session, signed.token)
    assert auth.authenticate(session, bob.token).user_id == bob.user.id
    assert auth.revoke_sessions(session, user_id=ada.id) == 0


def test_revoke_sessions_keeps_the_named_session(session, now):
    ada = make_user(session, "ada")
    here, other, third = (
        auth.login(session, username="ada", password=PASSWORD, ip=IP) for _ in range(3)
    )
    auth.logout(session, auth.authenticate(session, third.token))

    ended = auth.revoke_sessions(session, user_id=ada.id, keep_session_id=here.session_id)

    assert ended == 1  # ``third`` was already revoked and is not counted again
    assert auth.authenticate(session, here.token).session_id == here.session_id
    assert_refused(session, other.token)
    assert_refused(session, third.token)
    here_row = session_row(session, here.session_id)
    assert here_row is not None and here_row.revoked_at is None


# --- handoff ----------------------------------------------------------------------------------


def test_a_redeemed_handoff_gives_a_token_for_the_same_session(session, signed, now):
    identity = auth.authenticate(session, signed.token)
    handoff = auth.issue_handoff(identity)
    handoff_claims = claims_of(handoff)
    assert handoff_claims["aud"] == "iris:web-handoff"
    assert handoff_claims["exp"] - handoff_claims["iat"] == 60

    token, expires_at = auth.redeem_handoff(session, handoff)

    assert auth.authenticate(session, token) == identity
    assert expires_at == signed.expires_at
    assert claims_of(token)["exp"] == claims_of(signed.token)["exp"]
    assert count(session, UserSession) == 1  # no new session was opened


def test_a_session_token_cannot_be_redeemed_as_a_handoff(session, signed):
    with pytest.raises(NotAuthenticated):
        auth.redeem_handoff(session, signed.token)


def test_a_handoff_of_a_logged_out_session_is_refused(session, signed):
    identity = auth.authenticate(session, signed.token)
    handoff = auth.issue_handoff(identity)
    auth.logout(session, identity)

    with pytest.raises(NotAuthenticated) as caught:
        auth.redeem_handoff(session, handoff)
    assert caught.value.message == auth.SESSION_ENDED


def test_a_handoff_older_than_a_minute_is_refused(session, now):
    make_user(session, "ada")
    now.advance(minutes=-5)  # issued five real minutes ago
    signed = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    old = auth.issue_handoff(auth.Identity(signed.user.id, signed.session_id))
    now.advance(minutes=5)
    fresh = auth.issue_handoff(auth.Identity(signed.user.id, signed.session_id))

    with pytest.raises(NotAuthenticated):
        auth.redeem_handoff(session, old)
    assert auth.authenticate(session, auth.redeem_handoff(session, fresh)[0]).session_id == (
        signed.session_id
    )


def test_a_forged_handoff_is_refused(session, signed):
    handoff = auth.issue_handoff(auth.Identity(signed.user.id, signed.session_id))

    with pytest.raises(NotAuthenticated):
        auth.redeem_handoff(session, sign(claims_of(handoff), key="another-secret-" + "y" * 40))
    with pytest.raises(NotAuthenticated):
        auth.redeem_handoff(session, jwt.encode(claims_of(handoff), None, algorithm="none"))


def test_a_handoff_is_redeemed_once(session, signed):
    handoff = auth.issue_handoff(auth.Identity(signed.user.id, signed.session_id))
    assert (
        claims_of(handoff)["jti"]
        != claims_of(auth.issue_handoff(auth.authenticate(session, signed.token)))["jti"]
    )
    auth.redeem_handoff(session, handoff)

    for _ in range(2):
        with pytest.raises(NotAuthenticated) as caught:
            auth.redeem_handoff(session, handoff)
        assert caught.value.message == auth.SESSION_ENDED
    assert count(session, UsedHandoff) == 1


def test_a_handoff_without_an_id_is_refused(session, signed):
    """An old-style handoff (no ``jti``) cannot be marked used, so it is not accepted."""
    claims = claims_of(auth.issue_handoff(auth.Identity(signed.user.id, signed.session_id)))
    del claims["jti"]
    with pytest.raises(NotAuthenticated):
        auth.redeem_handoff(session, sign(claims))


def test_concurrent_redemptions_of_one_handoff_let_exactly_one_win(session, signed):
    """Eight threads, each with its own connection, redeem the same handoff at once."""
    handoff = auth.issue_handoff(auth.Identity(signed.user.id, signed.session_id))
    engine = session.get_bind()
    start = threading.Barrier(8)

    def redeem() -> str:
        with Session(engine) as own:
            start.wait()
            try:
                auth.redeem_handoff(own, handoff)
            except NotAuthenticated:
                return "refused"
            return "redeemed"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(lambda _: redeem(), range(8)))
    assert outcomes == ["redeemed"] + ["refused"] * 7
    assert count(session, UsedHandoff) == 1


def test_prune_forgets_used_handoffs_once_they_expired(session, signed, now):
    auth.redeem_handoff(session, auth.issue_handoff(auth.authenticate(session, signed.token)))
    auth.prune(session, now=now.current + timedelta(seconds=auth.HANDOFF_SECONDS - 1))
    assert count(session, UsedHandoff) == 1
    auth.prune(session, now=now.current + timedelta(seconds=auth.HANDOFF_SECONDS))
    assert count(session, UsedHandoff) == 0


# --- prune ------------------------------------------------------------------------------------


def test_prune_forgets_failures_that_left_the_window_and_keeps_fresh_ones(session, now):
    start = now.current
    fail(session, "old")
    now.advance(minutes=1)
    fail(session, "recent")
    now.current = start + window()
    fail(session, "new")

    auth.prune(session)

    # ``old`` is exactly one window old: it no longer counts, so it goes.
    assert failures(session) == [("recent", IP), ("new", IP)]


def test_prune_deletes_expired_sessions_and_keeps_live_ones(session, now):
    make_user(session, "ada")
    start = now.advance(days=-2)  # so the token of ``fresh`` is not from the future
    old = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    now.advance(days=1)
    fresh = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    now.current = start + lifetime()

    auth.prune(session)

    assert session_row(session, old.session_id) is None
    assert session_row(session, fresh.session_id) is not None
    assert auth.authenticate(session, fresh.token).session_id == fresh.session_id


def test_prune_uses_the_time_it_is_given(session, now):
    make_user(session, "ada")
    signed = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    fail(session, "bob")

    auth.prune(session, now=now.current + timedelta(seconds=1))
    assert count(session, UserSession) == 1
    assert count(session, LoginFailure) == 1

    auth.prune(session, now=signed.expires_at)
    assert count(session, UserSession) == 0
    assert count(session, LoginFailure) == 0


def test_token_expiry_follows_the_app_clock(session, frozen_clock):
    make_user(session, "ada")
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    signed = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    lifetime = get_settings().jwt_lifetime_minutes
    frozen_clock.advance(minutes=lifetime, seconds=-1)
    assert auth.authenticate(session, signed.token).user_id == signed.user.id
    frozen_clock.advance(seconds=1)
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, signed.token)


def test_a_token_verified_before_is_refused_once_it_expired(session, frozen_clock):
    """Tokens already verified are remembered (by a digest) with their expiry: the token's
    own expiry still refuses it while its session row is live."""
    make_user(session, "ada")
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    signed = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    short = sign({**claims_of(signed.token), "exp": int(frozen_clock.current.timestamp()) + 60})
    assert auth.authenticate(session, short).session_id == signed.session_id
    assert auth.authenticate(session, short).session_id == signed.session_id  # remembered
    frozen_clock.advance(seconds=60)
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, short)
    assert auth.authenticate(session, signed.token).session_id == signed.session_id


def test_a_remembered_token_is_refused_once_its_session_is_revoked(session, signed):
    identity = auth.authenticate(session, signed.token)
    auth.logout(session, identity)
    assert_refused(session, signed.token)


def test_handoff_expires_after_sixty_seconds(session, frozen_clock):
    make_user(session, "ada")
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    signed = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    handoff = auth.issue_handoff(auth.Identity(signed.user.id, signed.session_id))
    frozen_clock.advance(seconds=auth.HANDOFF_SECONDS - 1)
    assert auth.redeem_handoff(session, handoff)[1] == signed.expires_at
    frozen_clock.advance(seconds=1)
    with pytest.raises(NotAuthenticated):
        auth.redeem_handoff(session, handoff)


def test_session_is_live_until_revoked(session, now):
    make_user(session, "ada")
    signed = auth.login(session, username="ada", password=PASSWORD, ip=IP)
    identity = auth.Identity(signed.user.id, signed.session_id)
    assert auth.session_is_live(session, identity) is True
    auth.revoke_sessions(session, user_id=signed.user.id)
    assert auth.session_is_live(session, identity) is False
    assert auth.session_is_live(session, auth.Identity(signed.user.id, "no-such-session")) is False
