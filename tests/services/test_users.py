"""Accounts: registration rules, case-insensitive uniqueness and lookups.

Every refusal also checks that nothing was written. Registrations that pass validation cost
an argon2 hash each, so the valid cases are kept few.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import event, func
from sqlmodel import Session, select

from iris_reflex import clock
from iris_reflex.errors import Conflict, Invalid, NotAuthenticated, NotFound
from iris_reflex.models import User
from iris_reflex.services import passwords, users

PASSWORD = "correct horse"


def user_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


def stored_users(session: Session) -> list[User]:
    """The rows as the database has them now, not as this session remembers them."""
    session.expire_all()
    return list(session.exec(select(User).order_by(User.id)).all())


# --- registration: the happy path -----------------------------------------------------------


def test_register_creates_one_account_with_the_username_as_typed(session, frozen_clock):
    user = users.check_register(
        session, username="Ada.Lovelace_1", password=PASSWORD, ip="192.0.2.1"
    )

    assert user.id is not None
    [row] = stored_users(session)
    assert row.id == user.id
    assert row.username == "Ada.Lovelace_1"
    assert row.username_key == "ada.lovelace_1"
    assert row.display_name == "Ada.Lovelace_1"
    assert row.created_at == frozen_clock.current
    assert row.status_message == ""
    assert row.read_receipts is True


def test_register_stores_an_argon2_hash_that_verifies_and_is_not_the_password(session):
    users.check_register(session, username="ada", password=PASSWORD, ip="192.0.2.1")

    [row] = stored_users(session)
    assert row.password_hash.startswith("$argon2")
    assert row.password_hash != PASSWORD
    assert PASSWORD not in row.password_hash
    assert passwords.verify(PASSWORD, row.password_hash)[0] is True
    assert passwords.verify("wrong horse", row.password_hash)[0] is False


def test_register_removes_surrounding_spaces_from_the_username(session):
    user = users.check_register(session, username="  Ada \t", password=PASSWORD, ip="192.0.2.1")

    assert user.username == "Ada"
    assert [row.username for row in stored_users(session)] == ["Ada"]


def test_register_keeps_the_password_exactly_including_spaces(session):
    password = "  spaced password  "
    users.check_register(session, username="ada", password=password, ip="192.0.2.1")

    [row] = stored_users(session)
    assert passwords.verify(password, row.password_hash)[0] is True
    assert passwords.verify(password.strip(), row.password_hash)[0] is False


# --- registration: uniqueness ---------------------------------------------------------------


def test_username_is_unique_regardless_of_case(session):
    first = users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")

    for second in ("ADA", "ada", "aDa", " Ada "):
        with pytest.raises(Conflict) as caught:
            users.check_register(
                session, username=second, password="another password", ip="192.0.2.1"
            )
        assert caught.value.message == "That username is taken."

    rows = stored_users(session)
    assert [(row.id, row.username) for row in rows] == [(first.id, "Ada")]
    assert passwords.verify(PASSWORD, rows[0].password_hash)[0] is True


def test_a_refused_duplicate_leaves_the_session_usable_for_the_next_registration(session):
    users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")
    with pytest.raises(Conflict):
        users.check_register(session, username="ADA", password=PASSWORD, ip="192.0.2.1")

    users.check_register(session, username="Grace", password=PASSWORD, ip="192.0.2.1")

    assert [row.username for row in stored_users(session)] == ["Ada", "Grace"]


def test_a_registration_that_loses_a_race_is_a_conflict_not_a_crash(session):
    """Another connection takes the name between the check and the insert: the unique index
    decides, the loser gets ``Conflict`` and its session is rolled back cleanly."""
    engine = session.get_bind()

    def register_elsewhere(*_args: object) -> None:
        with Session(engine) as other:
            other.add(
                User(
                    username="ADA",
                    username_key="ada",
                    display_name="ADA",
                    password_hash=passwords.DUMMY_HASH,
                    created_at=clock.now(),
                )
            )
            other.commit()

    event.listen(session, "before_flush", register_elsewhere, once=True)

    with pytest.raises(Conflict):
        users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")

    assert [row.username for row in stored_users(session)] == ["ADA"]
    users.check_register(session, username="Grace", password=PASSWORD, ip="192.0.2.1")
    assert user_count(session) == 2


# --- registration: username rules -----------------------------------------------------------


@pytest.mark.parametrize("length", [3, 32])
def test_username_of_3_and_32_characters_is_accepted(session, length):
    username = ("Ab1_." * 7)[:length]

    user = users.check_register(session, username=username, password=PASSWORD, ip="192.0.2.1")

    assert user.username == username
    assert user_count(session) == 1


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="only-spaces"),
        pytest.param("ab", id="2-chars"),
        pytest.param(" ab ", id="2-chars-after-strip"),
        pytest.param("a" * 33, id="33-chars"),
        pytest.param("ada lovelace", id="inner-space"),
        pytest.param("ada\tl", id="tab"),
        pytest.param("ada-l", id="hyphen"),
        pytest.param("ada@home", id="at-sign"),
        pytest.param("ada+1", id="plus"),
        pytest.param("ada/..", id="slash"),
        pytest.param("adé", id="accented-latin"),
        pytest.param("Ådam", id="a-ring"),
        pytest.param("аda", id="cyrillic-a-homoglyph"),
        pytest.param("名前です", id="cjk"),
        pytest.param("１２３", id="fullwidth-digits"),
        pytest.param("\u212aelvin", id="kelvin-sign"),
        pytest.param("ada\u200b", id="zero-width-space"),
        pytest.param("ada\x00", id="nul"),
        pytest.param("ada\nbob", id="inner-newline"),
    ],
)
def test_username_outside_the_rules_is_invalid_and_nothing_is_written(session, username):
    with pytest.raises(Invalid) as caught:
        users.check_register(session, username=username, password=PASSWORD, ip="192.0.2.1")

    assert "3 to 32 characters" in caught.value.message
    assert user_count(session) == 0


def test_username_rules_are_checked_before_anything_is_hashed(session):
    """A bad username with a bad password reports the username (the first rule)."""
    with pytest.raises(Invalid) as caught:
        users.check_register(session, username="a", password="short", ip="192.0.2.1")

    assert "username" in caught.value.message
    assert user_count(session) == 0


# --- registration: password rules -----------------------------------------------------------


@pytest.mark.parametrize("length", [8, 128])
def test_password_of_8_and_128_characters_is_accepted(session, length):
    password = ("pässwörd" * 16)[:length]
    assert len(password) == length

    users.check_register(session, username="ada", password=password, ip="192.0.2.1")

    [row] = stored_users(session)
    assert passwords.verify(password, row.password_hash)[0] is True


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        pytest.param("", "at least 8", id="empty"),
        pytest.param("x" * 7, "at least 8", id="7-chars"),
        pytest.param("x" * 129, "at most 128", id="129-chars"),
        pytest.param("x" * 10_000, "at most 128", id="10000-chars"),
    ],
)
def test_password_outside_8_to_128_characters_is_invalid_and_nothing_is_written(
    session, password, fragment
):
    with pytest.raises(Invalid) as caught:
        users.check_register(session, username="ada", password=password, ip="192.0.2.1")

    assert fragment in caught.value.message
    assert user_count(session) == 0


# --- lookups ----------------------------------------------------------------------------------


def test_get_by_username_finds_the_user_in_any_case(session):
    ada = users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")

    for typed in ("Ada", "ada", "ADA", "  aDA "):
        found = users.get_by_username(session, typed)
        assert found is not None
        assert found.id == ada.id


def test_get_by_username_is_none_for_an_unknown_or_similar_name(session):
    users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")

    assert users.get_by_username(session, "Adam") is None
    assert users.get_by_username(session, "Ad") is None
    assert users.get_by_username(session, "") is None


def test_access_user_returns_the_user_with_that_id(session):
    ada = users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")
    assert ada.id is not None

    assert users.access_user(session, ada.id).username == "Ada"


def test_access_user_with_an_unknown_id_is_not_found(session):
    ada = users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")
    assert ada.id is not None

    with pytest.raises(NotFound):
        users.access_user(session, ada.id + 1000)


def test_public_user_shows_no_hash_and_no_settings(session):
    ada = users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")

    public = users.PublicUser.of(ada)

    assert dataclasses.asdict(public) == {
        "id": ada.id,
        "username": "Ada",
        "display_name": "Ada",
        "status_message": "",
        "avatar_version": None,
    }


def test_me_shows_the_own_settings_but_not_the_hash(session, frozen_clock):
    ada = users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")

    me = dataclasses.asdict(users.Me.of(ada))

    assert me == {
        "id": ada.id,
        "username": "Ada",
        "display_name": "Ada",
        "status_message": "",
        "theme": ada.theme,
        "read_receipts": True,
        "created_at": frozen_clock.current,
        "avatar_version": None,
    }
    assert not any(str(value).startswith("$argon2") for value in me.values())


def test_a_password_with_a_lone_surrogate_is_refused_not_crashed(session):
    from iris_reflex.services import auth

    with pytest.raises(Invalid, match="must be text"):
        users.check_register(session, username="Ada", password="abc\ud800defgh", ip="192.0.2.1")
    users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")
    with pytest.raises(NotAuthenticated):
        auth.login(session, username="Ada", password="abc\ud800defgh", ip="192.0.2.9")
