"""Passkeys on both databases: registering, signing in with one alone, passing the second
step with one, the per-username lock they open, and everything a replayed, late, cloned or
foreign answer must not do. Responses come from a software authenticator
(``tests/services/authenticator.py``) answering the options the services hand out."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pyotp
import pytest
import webauthn
from sqlmodel import Session, col, func, select

from iris_reflex.db import engine_for
from iris_reflex.errors import (
    Conflict,
    Invalid,
    NotAuthenticated,
    NotFound,
    SecondFactorRequired,
    Throttled,
)
from iris_reflex.models import LoginFailure, Passkey, PasskeyChallenge, User, UserSession
from iris_reflex.services import accounts, auth, passkeys, passwords, two_factor
from iris_reflex.settings import get_settings
from tests.services.authenticator import Authenticator

PASSWORD = "correct horse battery"
IP = "198.51.100.7"
OTHER_IP = "203.0.113.9"


@functools.cache
def password_hash() -> str:
    return passwords.hash_password(PASSWORD)


@pytest.fixture
def now(frozen_clock):
    """The frozen clock at the real time (whole seconds), so PyJWT accepts the tokens."""
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    return frozen_clock


@pytest.fixture
def device() -> Authenticator:
    return Authenticator(origin=passkeys.relying_party().origins[0])


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


def add_passkey(session: Session, user: User, device: Authenticator, name: str = "Laptop"):
    options = accounts.begin_passkey_registration(
        session, actor_id=user.id, password=PASSWORD, ip=IP
    )
    return passkeys.register(
        session, actor_id=user.id, credential=device.create(options), name=name
    )


def sign_in(session: Session, device: Authenticator, **get_kwargs) -> auth.SignedIn:
    options = auth.passkey_sign_in_options(session, ip=IP)
    return auth.login_with_passkey(
        session, credential=device.get(options, **get_kwargs), ip=IP, user_agent="Chrome/1 Linux"
    )


def count(session: Session, model: type, *where: object) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def stored(session: Session) -> Passkey:
    session.expire_all()
    return session.exec(select(Passkey)).one()


# --------------------------------------------------------------------------- relying party


def test_the_relying_party_comes_from_the_allowed_origins_not_from_a_request(monkeypatch):
    monkeypatch.setattr(
        get_settings(), "allowed_origins", "http://10.0.0.5:3000,https://chat.example.org"
    )
    rp = passkeys.relying_party()
    # An address cannot be an RP id: the first origin with a name is used.
    assert (rp.id, rp.origins) == ("chat.example.org", ("https://chat.example.org",))

    monkeypatch.setattr(get_settings(), "passkey_rp_id", "example.org")
    monkeypatch.setattr(
        get_settings(), "allowed_origins", "https://chat.example.org,https://other.test"
    )
    assert passkeys.relying_party() == passkeys.RelyingParty(
        id="example.org", origins=("https://chat.example.org",)
    )


def test_passkeys_are_unavailable_when_every_origin_is_an_address(monkeypatch):
    monkeypatch.setattr(get_settings(), "allowed_origins", "http://127.0.0.1:3000")
    with pytest.raises(Invalid, match="not set up"):
        passkeys.relying_party()
    monkeypatch.setattr(get_settings(), "allowed_origins", "https://chat.example.org")
    monkeypatch.setattr(get_settings(), "passkey_rp_id", "elsewhere.org")
    with pytest.raises(Invalid, match="not set up"):
        passkeys.relying_party()


# ----------------------------------------------------------------------------- registration


def test_registering_asks_for_a_resident_verified_key_and_stores_it(session, now, device):
    user = make_user(session)
    options = accounts.begin_passkey_registration(
        session, actor_id=user.id, password=PASSWORD, ip=IP
    )
    assert options["rp"] == {"id": "localhost", "name": "Iris"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    # The WebAuthn user id is a random handle, not the database id or the username.
    assert options["user"]["name"] == "ada" and len(options["user"]["id"]) == 43
    info = passkeys.register(
        session, actor_id=user.id, credential=device.create(options), name="  My\tlaptop "
    )
    assert info.name == "My laptop" and info.last_used_at is None
    row = stored(session)
    assert row.user_id == user.id and row.transports == "internal" and row.sign_count == 0
    assert webauthn.base64url_to_bytes(row.credential_id) == device.credentials[0].id
    assert count(session, PasskeyChallenge) == 0  # the challenge is used up

    # A second passkey keeps the user's handle and excludes the first one.
    options = accounts.begin_passkey_registration(
        session, actor_id=user.id, password=PASSWORD, ip=IP
    )
    assert options["user"]["id"] == row.user_handle
    assert [c["id"] for c in options["excludeCredentials"]] == [row.credential_id]


def test_adding_a_passkey_needs_the_password_counted_like_a_login(session, now, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_free_attempts", 1)
    user = make_user(session)
    with pytest.raises(Invalid):
        accounts.begin_passkey_registration(session, actor_id=user.id, password="wrong", ip=IP)
    assert count(session, LoginFailure) == 1
    assert count(session, PasskeyChallenge) == 0
    with pytest.raises(Throttled):
        accounts.begin_passkey_registration(session, actor_id=user.id, password=PASSWORD, ip=IP)


def test_a_registration_answer_works_once_and_for_its_own_user_only(session, now, device):
    ada, bob = make_user(session, "ada"), make_user(session, "bob")
    options = accounts.begin_passkey_registration(session, actor_id=ada.id, password=PASSWORD)
    credential = device.create(options)
    with pytest.raises(Invalid):
        passkeys.register(session, actor_id=bob.id, credential=credential, name="Stolen")
    # Bob's try used the challenge up: Ada must start again.
    with pytest.raises(Invalid):
        passkeys.register(session, actor_id=ada.id, credential=credential, name="Laptop")
    assert count(session, Passkey) == 0


def test_a_registration_from_another_origin_or_without_verification_is_refused(
    session, now, device
):
    user = make_user(session)
    options = accounts.begin_passkey_registration(session, actor_id=user.id, password=PASSWORD)
    foreign = device.create(options, origin="http://localhost:4000")
    with pytest.raises(Invalid):
        passkeys.register(session, actor_id=user.id, credential=foreign, name="Laptop")
    device.user_verified = False
    options = accounts.begin_passkey_registration(session, actor_id=user.id, password=PASSWORD)
    with pytest.raises(Invalid):
        passkeys.register(session, actor_id=user.id, credential=device.create(options), name="x")
    assert count(session, Passkey) == 0


def test_names_are_checked_and_a_passkey_can_be_renamed(session, now, device):
    user = make_user(session)
    with pytest.raises(Invalid):
        passkeys.register(session, actor_id=user.id, credential={}, name=" ")
    info = add_passkey(session, user, device)
    assert passkeys.rename(session, actor_id=user.id, passkey_id=info.id, name="Phone").name == (
        "Phone"
    )
    with pytest.raises(Invalid):
        passkeys.rename(session, actor_id=user.id, passkey_id=info.id, name="x" * 65)
    other = make_user(session, "bob")
    with pytest.raises(NotFound):
        passkeys.rename(session, actor_id=other.id, passkey_id=info.id, name="Mine")
    assert [p.name for p in passkeys.list_passkeys(session, actor_id=user.id)] == ["Phone"]


def test_the_same_credential_cannot_be_added_twice(session, now, device):
    user = make_user(session)
    add_passkey(session, user, device)
    options = accounts.begin_passkey_registration(session, actor_id=user.id, password=PASSWORD)
    # excludeCredentials stops a browser; the unique column stops anything else.
    again = device.create(options, reuse=device.credentials[0])
    with pytest.raises(Conflict):
        passkeys.register(session, actor_id=user.id, credential=again, name="Again")
    assert count(session, Passkey) == 1


# ------------------------------------------------------------------------------ signing in


def test_a_passkey_signs_in_alone_even_with_two_step_on(session, now, device):
    user = make_user(session)
    add_passkey(session, user, device)
    enrolment = two_factor.begin_enrolment(session, actor_id=user.id)
    two_factor.confirm_enrolment(
        session, actor_id=user.id, code=pyotp.TOTP(enrolment.secret).at(now.current)
    )
    signed = sign_in(session, device)
    assert signed.user.id == user.id
    assert auth.authenticate(session, signed.token).user_id == user.id
    row = stored(session)
    assert row.sign_count == 1 and row.last_used_at == now.current
    assert passkeys.list_passkeys(session, actor_id=user.id)[0].last_used_at == now.current


def test_a_sign_in_answer_is_refused_when_replayed(session, now, device):
    user = make_user(session)
    add_passkey(session, user, device)
    options = auth.passkey_sign_in_options(session, ip=IP)
    answer = device.get(options)
    assert auth.login_with_passkey(session, credential=answer, ip=IP).user.id == user.id
    with pytest.raises(NotAuthenticated):
        auth.login_with_passkey(session, credential=answer, ip=IP)
    assert count(session, UserSession) == 1


def test_a_wrong_answer_uses_the_challenge_up(session, now, device):
    user = make_user(session)
    add_passkey(session, user, device)
    options = auth.passkey_sign_in_options(session, ip=IP)
    good = device.get(options)
    forged = {**good, "response": {**good["response"], "signature": good["response"]["userHandle"]}}
    with pytest.raises(NotAuthenticated):
        auth.login_with_passkey(session, credential=forged, ip=IP)
    with pytest.raises(NotAuthenticated):
        auth.login_with_passkey(session, credential=good, ip=IP)
    assert count(session, UserSession) == 0


def test_a_challenge_expires_after_five_minutes(session, now, device):
    user = make_user(session)
    add_passkey(session, user, device)
    options = auth.passkey_sign_in_options(session, ip=IP)
    now.advance(seconds=passkeys.CHALLENGE_SECONDS)
    with pytest.raises(NotAuthenticated):
        auth.login_with_passkey(session, credential=device.get(options), ip=IP)
    passkeys.prune(session, now=now.current)
    assert count(session, PasskeyChallenge) == 0


def test_a_sign_count_that_goes_back_is_refused_as_a_clone(session, now, device):
    user = make_user(session)
    add_passkey(session, user, device)
    sign_in(session, device)
    sign_in(session, device)
    assert stored(session).sign_count == 2
    device.credentials[0].sign_count = 0  # the clone's next count is 1, not 3
    with pytest.raises(NotAuthenticated):
        sign_in(session, device)
    assert stored(session).sign_count == 2


def test_an_authenticator_whose_count_stays_zero_keeps_signing_in(session, now):
    device = Authenticator(origin=passkeys.relying_party().origins[0], counts=False)
    user = make_user(session)
    add_passkey(session, user, device)
    for _ in range(2):
        assert sign_in(session, device).user.id == user.id


def test_a_sign_in_needs_user_verification_and_our_origin(session, now, device):
    user = make_user(session)
    add_passkey(session, user, device)
    with pytest.raises(NotAuthenticated):
        sign_in(session, device, origin="http://127.0.0.1:3000")
    device.user_verified = False
    with pytest.raises(NotAuthenticated):
        sign_in(session, device)


def test_a_deleted_passkey_no_longer_signs_in(session, now, device):
    user = make_user(session)
    info = add_passkey(session, user, device)
    with pytest.raises(Invalid):
        accounts.remove_passkey(session, actor_id=user.id, passkey_id=info.id, password="nope")
    assert count(session, Passkey) == 1
    other = make_user(session, "bob")
    with pytest.raises(NotFound):
        accounts.remove_passkey(session, actor_id=other.id, passkey_id=info.id, password=PASSWORD)
    accounts.remove_passkey(session, actor_id=user.id, passkey_id=info.id, password=PASSWORD)
    assert passkeys.list_passkeys(session, actor_id=user.id) == []
    with pytest.raises(NotAuthenticated):
        sign_in(session, device)


def test_deleting_the_account_deletes_its_passkeys(session, now, device, uploads):
    user = make_user(session)
    add_passkey(session, user, device)
    accounts.begin_passkey_registration(session, actor_id=user.id, password=PASSWORD)
    accounts.delete_account(session, actor_id=user.id, password=PASSWORD)
    assert count(session, Passkey) == 0
    assert count(session, PasskeyChallenge, col(PasskeyChallenge.user_id).is_not(None)) == 0
    with pytest.raises(NotAuthenticated):
        sign_in(session, device)


def test_sign_in_challenges_per_address_are_limited(session, now, monkeypatch):
    monkeypatch.setattr(get_settings(), "passkey_challenges_per_minute", 2)
    for _ in range(2):
        auth.passkey_sign_in_options(session, ip=IP)
    with pytest.raises(Throttled) as raised:
        auth.passkey_sign_in_options(session, ip=IP)
    assert 0 < raised.value.retry_after <= 60
    auth.passkey_sign_in_options(session, ip=OTHER_IP)  # another address is not slowed


def test_concurrent_answers_to_one_challenge_open_one_session(session, now, device, database_url):
    user = make_user(session)
    add_passkey(session, user, device)
    options = auth.passkey_sign_in_options(session, ip=IP)
    answer = device.get(options)
    engine = engine_for(database_url)

    def attempt(_: int) -> bool:
        with Session(engine, expire_on_commit=False) as own:
            try:
                auth.login_with_passkey(own, credential=answer, ip=IP)
            except NotAuthenticated:
                return False
            return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, range(4)))
    assert results.count(True) == 1
    assert count(session, UserSession) == 1


# ----------------------------------------------------------------------- as a second factor


def two_step_user(session: Session, now, device: Authenticator) -> tuple[User, str]:
    user = make_user(session)
    add_passkey(session, user, device)
    enrolment = two_factor.begin_enrolment(session, actor_id=user.id)
    two_factor.confirm_enrolment(
        session, actor_id=user.id, code=pyotp.TOTP(enrolment.secret).at(now.current)
    )
    return user, enrolment.secret


def challenge_for(session: Session, username: str = "ada", ip: str = IP) -> SecondFactorRequired:
    with pytest.raises(SecondFactorRequired) as raised:
        auth.login(session, username=username, password=PASSWORD, ip=ip)
    return raised.value


def test_with_two_step_on_a_passkey_passes_the_second_step_once(session, now, device):
    user, _ = two_step_user(session, now, device)
    needed = challenge_for(session)
    assert needed.methods == ("totp", "recovery_code", "passkey")
    options = auth.passkey_second_factor_options(session, challenge=needed.challenge)
    assert [c["id"] for c in options["allowCredentials"]] == [stored(session).credential_id]
    signed = auth.finish_login_with_passkey(
        session, challenge=needed.challenge, credential=device.get(options), ip=IP
    )
    assert signed.user.id == user.id
    assert count(session, LoginFailure) == 0  # the pair's count is cleared, as for a code
    # The second-step challenge opened its one session: a new passkey answer is refused.
    options = auth.passkey_second_factor_options(session, challenge=needed.challenge)
    with pytest.raises(NotAuthenticated, match="took too long"):
        auth.finish_login_with_passkey(
            session, challenge=needed.challenge, credential=device.get(options), ip=IP
        )


def test_another_users_passkey_does_not_pass_the_second_step(session, now, device):
    two_step_user(session, now, device)
    mallory_device = Authenticator(origin=device.origin)
    mallory = make_user(session, "mallory")
    add_passkey(session, mallory, mallory_device)
    needed = challenge_for(session)
    options = auth.passkey_second_factor_options(session, challenge=needed.challenge)
    answer = mallory_device.get({**options, "allowCredentials": []})
    with pytest.raises(NotAuthenticated, match="not accepted"):
        auth.finish_login_with_passkey(
            session, challenge=needed.challenge, credential=answer, ip=IP
        )
    # Counted like a wrong code: the password's attempt and this one.
    assert count(session, LoginFailure, col(LoginFailure.username_key) == "ada") == 2
    # A sign-in challenge is not a second-step one either.
    sign_in_options = auth.passkey_sign_in_options(session, ip=IP)
    with pytest.raises(NotAuthenticated):
        auth.finish_login_with_passkey(
            session, challenge=needed.challenge, credential=device.get(sign_in_options), ip=IP
        )


def test_wrong_second_step_passkeys_are_throttled_like_codes(session, now, device, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_free_attempts", 2)
    two_step_user(session, now, device)
    needed = challenge_for(session)
    with pytest.raises(NotAuthenticated):
        auth.finish_login_with_passkey(session, challenge=needed.challenge, credential={}, ip=IP)
    with pytest.raises(Throttled):
        auth.finish_login_with_passkey(session, challenge=needed.challenge, credential={}, ip=IP)


def test_second_step_options_need_a_live_challenge(session, now, device):
    two_step_user(session, now, device)
    with pytest.raises(NotAuthenticated, match="took too long"):
        auth.passkey_second_factor_options(session, challenge="not-a-token")


# ------------------------------------------------------------------- the per-username lock


def guard(session: Session, monkeypatch, username: str = "ada") -> None:
    """Failures for ``username`` from many addresses, up to its limit."""
    monkeypatch.setattr(get_settings(), "login_max_failures", 5)
    for i in range(5):
        with pytest.raises(NotAuthenticated):
            auth.login(session, username=username, password="wrong", ip=f"192.0.2.{i}")
    assert auth.username_is_guarded(session, key=username, now=datetime.now(UTC))


def test_a_guarded_username_with_a_passkey_needs_it_after_the_password(
    session, now, device, monkeypatch
):
    user = make_user(session)
    add_passkey(session, user, device)
    # Not guarded: the password alone still signs in (passkeys are not a second step).
    assert auth.login(session, username="ada", password=PASSWORD, ip=IP).user.id == user.id
    guard(session, monkeypatch)
    needed = challenge_for(session, ip=OTHER_IP)
    assert needed.methods == ("passkey",)
    with pytest.raises(NotAuthenticated):  # a code cannot pass it: there is no app
        auth.finish_login(session, challenge=needed.challenge, code="123456", ip=OTHER_IP)
    needed = challenge_for(session, ip="198.51.100.99")
    options = auth.passkey_second_factor_options(session, challenge=needed.challenge)
    # Right after the password, without waiting: the owner passes the lock.
    signed = auth.finish_login_with_passkey(
        session, challenge=needed.challenge, credential=device.get(options), ip="198.51.100.99"
    )
    assert signed.user.id == user.id
    # And a passkey sign-in is never asked for anything else.
    assert sign_in(session, device).user.id == user.id


def test_a_guarded_username_with_two_step_passes_with_password_and_code_at_once(
    session, now, device, monkeypatch
):
    _, secret = two_step_user(session, now, device)
    guard(session, monkeypatch)
    needed = challenge_for(session, ip=OTHER_IP)
    now.advance(seconds=30)
    code = pyotp.TOTP(secret).at(now.current)
    signed = auth.finish_login(session, challenge=needed.challenge, code=code, ip=OTHER_IP)
    assert signed.user.username == "ada"


def test_a_guarded_username_without_a_second_factor_is_paced_never_locked(
    session, now, monkeypatch
):
    make_user(session)
    guard(session, monkeypatch)
    assert auth.login(session, username="ada", password=PASSWORD, ip=OTHER_IP).user.username == (
        "ada"
    )


def test_a_passkey_is_not_offered_for_a_code_only_account(session, now):
    user = make_user(session)
    enrolment = two_factor.begin_enrolment(session, actor_id=user.id)
    two_factor.confirm_enrolment(
        session, actor_id=user.id, code=pyotp.TOTP(enrolment.secret).at(now.current)
    )
    needed = challenge_for(session)
    assert needed.methods == ("totp", "recovery_code")
    with pytest.raises(Invalid):
        auth.passkey_second_factor_options(session, challenge=needed.challenge)


def test_too_many_passkeys_are_refused(session, now, device, monkeypatch):
    monkeypatch.setattr(passkeys, "PER_USER_MAX", 1)
    user = make_user(session)
    add_passkey(session, user, device)
    with pytest.raises(Conflict):
        accounts.begin_passkey_registration(session, actor_id=user.id, password=PASSWORD)
